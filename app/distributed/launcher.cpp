#include "app/distributed/launcher.h"

#include "app/runtime/signals.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace vit::app {
namespace {

// This process's own arguments, so each rank runs exactly what the user typed.
std::vector<std::string> own_command_line() {
  std::ifstream file("/proc/self/cmdline", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<std::string> arguments;
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\0', start);
    arguments.push_back(text.substr(start, end - start));
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return arguments;
}

int exit_code_of(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("cannot open a socket to find a free loopback port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool found = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  if (!found) throw std::runtime_error("cannot find a free loopback port");
  return ntohs(address.sin_port);
}

int launch_local_ranks(int64_t nproc) {
  const auto arguments = own_command_line();
  std::vector<char*> argv;
  for (const auto& argument : arguments) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  const char* preset_port = std::getenv("MASTER_PORT");
  const std::string port =
      preset_port != nullptr && *preset_port != '\0' ? preset_port : std::to_string(free_loopback_port());
  spdlog::info("launching {} ranks on 127.0.0.1:{}", nproc, port);

  StopSignals signals(StopSignals::Second::IsCounted, /*announce=*/false);
  std::vector<pid_t> ranks;
  for (int64_t rank = 0; rank < nproc; ++rank) {
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("--nproc: fork failed");
    if (pid == 0) {
      // Its own process group: a terminal's Ctrl-C reaches the launcher, which forwards it once.
      setpgid(0, 0);
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", port.c_str(), 1);
      execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    ranks.push_back(pid);
  }

  int result = 0;
  int forwarded = 0;  // signals passed on so far: the first asks the ranks to stop, a second stops them at once
  size_t running = ranks.size();
  std::chrono::steady_clock::time_point kill_deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    const pid_t done = waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      --running;
      const auto rank = std::find(ranks.begin(), ranks.end(), done) - ranks.begin();
      ranks[rank] = 0;
      const int code = exit_code_of(status);
      if (code != 0 && result == 0) {
        result = code;
        spdlog::error("rank {} exited with code {}; stopping the other ranks", rank, code);
        for (const pid_t pid : ranks) {
          if (pid > 0) kill(pid, SIGTERM);
        }
        // Ranks blocked in a collective notice the dead peer; any that hang past this are killed.
        kill_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      }
      continue;
    }
    if (const int signal = signals.received(); signal != 0 && forwarded < std::min(signals.count(), 2)) {
      ++forwarded;
      for (const pid_t pid : ranks) {
        if (pid > 0) kill(pid, signal);
      }
    }
    if (std::chrono::steady_clock::now() > kill_deadline) {
      for (const pid_t pid : ranks) {
        if (pid > 0) kill(pid, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return result;
}

}  // namespace vit::app
