#include "app/signals.h"

#include <atomic>
#include <csignal>

namespace vit::app {
namespace {

std::atomic<int> g_received{0};

void on_signal(int signal) {
  g_received.store(signal);
  std::signal(signal, SIG_DFL);  // a second one is not caught
}

}  // namespace

StopSignals::StopSignals() {
  g_received.store(0);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

StopSignals::~StopSignals() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

int StopSignals::received() const { return g_received.load(); }

}  // namespace vit::app
