// nlohmann/json, which the gateway's payloads and wire format use (not the WebSocket core).
#pragma once
#include "config.hpp"

#ifndef GATEWAY_NO_JSON
#if !__has_include(<nlohmann/json.hpp>)
#error "gateway.hpp's gateway needs nlohmann/json (Debian: nlohmann-json3-dev); define GATEWAY_NO_JSON for the WebSocket core alone"
#endif
#include <nlohmann/json.hpp>  // the gateway's payloads and wire format

namespace gw::inline v0 {
using json = nlohmann::json;
} // namespace gw::v0
#endif
