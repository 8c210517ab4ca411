// Test support: a child process (a Node script, usually) spoken to in lines over its stdin and
// stdout, whose reads time out: a peer that never says what the test waits for fails the test
// with what it did say, instead of hanging until meson's timeout kills everything.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace test {

class line_process {
public:
    /// Starts argv (looked up on the PATH) with stdin and stdout on pipes; stderr is the test's.
    explicit line_process(std::vector<std::string> argv) {
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        if (pipe2(out, O_CLOEXEC) != 0) {
            ::close(in[0]);
            ::close(in[1]);
            throw std::runtime_error("pipe failed");
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        const int rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(out[1]);
        stdin_ = in[1];
        stdout_ = out[0];
        if (rc != 0) {
            pid_ = -1;
            throw std::runtime_error("cannot start " + argv[0]);
        }
    }
    line_process(const line_process&) = delete;
    line_process& operator=(const line_process&) = delete;
    ~line_process() {
        if (pid_ > 0) terminate();
        close_stdin();
        if (stdout_ >= 0) ::close(stdout_);
    }

    /// The next line (without its newline); nullopt when none came within limit or the process
    /// closed its stdout.
    std::optional<std::string> read_line(std::chrono::milliseconds limit = std::chrono::seconds(15)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return line;
            }
            if (eof_) return std::nullopt;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{stdout_, POLLIN, 0};
            const int n = ::poll(&p, 1, static_cast<int>(left.count()));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            char chunk[64 << 10];
            const auto got = ::read(stdout_, chunk, sizeof chunk);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) eof_ = true;
            else buffer_.append(chunk, static_cast<std::size_t>(got));
        }
    }

    /// Writes text (add the newline yourself); false when the process no longer reads.
    bool write(const std::string& text) {
        // A peer that died must fail the test, not kill it with SIGPIPE.
        struct sigaction ignore {}, old{};
        ignore.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &ignore, &old);
        std::size_t done = 0;
        while (done < text.size()) {
            const auto n = ::write(stdin_, text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
        sigaction(SIGPIPE, &old, nullptr);
        return done == text.size();
    }

    /// Ends its stdin (the scripts here take that as "no more input").
    void close_stdin() {
        if (stdin_ >= 0) ::close(stdin_);
        stdin_ = -1;
    }

    /// Waits for it to exit; its exit status, or -1 when a signal ended it.
    int wait() {
        if (pid_ <= 0) return status_;
        int status = 0;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return status_;
    }

    /// SIGTERM (or sig: SIGKILL for a crash), then wait().
    int terminate(int sig = SIGTERM) {
        if (pid_ > 0) ::kill(pid_, sig);
        return wait();
    }

private:
    pid_t pid_ = -1;
    int stdin_ = -1, stdout_ = -1;
    int status_ = -1;
    bool eof_ = false;
    std::string buffer_;
};

} // namespace test
