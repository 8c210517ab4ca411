// Test support: running coroutines to completion, throwaway TLS certificates, child processes.
#pragma once

#include "gateway.hpp"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace test {

/// Runs io until fut is ready (or the time limit passes, which fails the test); returns its value.
template <class T>
T wait(asio::io_context& io, std::future<T>& fut, std::chrono::seconds limit = std::chrono::seconds(30)) {
    io.restart();
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("test timed out");
        io.run_one_for(std::chrono::milliseconds(100));
    }
    return fut.get();
}

/// Starts the coroutine f() on io and returns its future. Takes the callable, not its awaitable, so a
/// capturing lambda lives as long as its coroutine.
template <class F> auto start(asio::io_context& io, F f) {
    return asio::co_spawn(io, std::move(f), asio::use_future);
}

/// Runs body on io until it completes; its exceptions reach the caller.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> body, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto fut = asio::co_spawn(io, std::move(body), asio::use_future);
    return wait(io, fut, limit);
}

/// Sends every message, then expects each echoed back in order, kind and bytes unchanged.
inline asio::awaitable<void> expect_echoes(gw::connection& c, const std::vector<gw::message>& sent) {
    for (const auto& m : sent) co_await c.send(m);
    for (const auto& m : sent) {
        auto got = co_await c.receive();
        EXPECT_TRUE(got.has_value());
        if (!got) co_return;
        EXPECT_EQ(got->binary, m.binary);
        EXPECT_EQ(got->data, m.data);
    }
}

/// Every byte value once: a binary payload that is not UTF-8.
inline std::string all_bytes() {
    std::string out;
    for (int i = 0; i < 256; ++i) out += static_cast<char>(i);
    return out;
}

/// A self-signed certificate for "localhost" and 127.0.0.1, made when the test runs.
struct certificate {
    std::string cert_pem, key_pem;

    static certificate make() {
        certificate out;
        EVP_PKEY* key = EVP_EC_gen("P-256");
        X509* x = X509_new();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key);
        X509_NAME* name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
        X509_set_issuer_name(x, name);
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
        for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                                  std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
            X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
            X509_add_ext(x, ext, -1);
            X509_EXTENSION_free(ext);
        }
        X509_sign(x, key, EVP_sha256());
        auto to_string = [](auto write) {
            BIO* bio = BIO_new(BIO_s_mem());
            write(bio);
            char* data = nullptr;
            long n = BIO_get_mem_data(bio, &data);
            std::string s(data, static_cast<std::size_t>(n));
            BIO_free(bio);
            return s;
        };
        out.cert_pem = to_string([&](BIO* b) { PEM_write_bio_X509(b, x); });
        out.key_pem = to_string([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
        X509_free(x);
        EVP_PKEY_free(key);
        return out;
    }

    std::shared_ptr<asio::ssl::context> server_context() const {
        auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
        ctx->use_certificate_chain(asio::buffer(cert_pem));
        ctx->use_private_key(asio::buffer(key_pem), asio::ssl::context::pem);
        return ctx;
    }

    /// A client context that trusts only this certificate and verifies the peer.
    std::shared_ptr<asio::ssl::context> client_context() const {
        auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
        ctx->add_certificate_authority(asio::buffer(cert_pem));
        ctx->set_verify_mode(asio::ssl::verify_peer);
        return ctx;
    }
};

/// A child process with its stdin and stdout on pipes. Closing stdin (or the destructor) ends it.
class child {
public:
    explicit child(std::vector<std::string> argv) {
        int in[2], out[2];
        if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addclose(&fa, in[1]);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        int rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        stdin_ = in[1];
        stdout_ = out[0];
        if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
    }
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    ~child() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            wait();
        }
        if (stdin_ >= 0) close(stdin_);
        close(stdout_);
    }

    /// The next line the child prints (without the newline); empty at end of file.
    std::string read_line() {
        std::string line;
        char ch;
        while (::read(stdout_, &ch, 1) == 1) {
            if (ch == '\n') return line;
            line += ch;
        }
        return line;
    }

    /// Reads lines until one says "listening on port N"; returns N.
    std::uint16_t wait_for_port() {
        for (;;) {
            std::string line = read_line();
            if (line.empty()) throw std::runtime_error("child exited before listening");
            if (auto at = line.find("listening on port "); at != std::string::npos)
                return static_cast<std::uint16_t>(std::stoi(line.substr(at + 18)));
        }
    }

    /// Sends SIGTERM and returns the exit status (-1 when killed by a signal).
    int terminate() {
        kill(pid_, SIGTERM);
        return wait();
    }

private:
    int wait() {
        int status = 0;
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    pid_t pid_ = -1;
    int stdin_ = -1, stdout_ = -1;
};

} // namespace test
