// GATEWAY_NO_JSON: leave out the gateway (events, rooms, namespaces), which needs nlohmann/json
// (Debian: nlohmann-json3-dev); the WebSocket core above it needs only Asio and OpenSSL.

