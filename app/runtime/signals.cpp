#include "app/runtime/signals.h"

#include "app/io/file_util.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace vit::app {
namespace {

constexpr int kCaught[] = {SIGINT, SIGTERM, SIGHUP};

std::atomic<int> g_first{0};
std::atomic<int> g_count{0};
std::atomic<bool> g_second_stops{false};
std::atomic<bool> g_announce{false};

// Only async-signal-safe calls here: write, unlink (inside remove_active_temporary), _exit.
void say(const char* text) {
  const ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

void on_signal(int signal) {
  int expected = 0;
  const bool first = g_first.compare_exchange_strong(expected, signal);
  g_count.fetch_add(1);
  if (first) {
    if (g_announce.load()) {
      say("\nstopping after the current step, then saving last.ckpt; signal again to stop at once "
          "(the last saved checkpoint stays intact)\n");
    }
    return;
  }
  if (!g_second_stops.load()) return;
  remove_active_temporary();
  say("\nsecond signal: stopped at once; the last saved checkpoint is intact\n");
  ::_exit(128 + signal);
}

}  // namespace

StopSignals::StopSignals(Second second, bool announce) {
  g_first.store(0);
  g_count.store(0);
  g_second_stops.store(second == Second::StopsAtOnce);
  g_announce.store(announce);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  for (const int signal : kCaught) sigaction(signal, &action, nullptr);
}

StopSignals::~StopSignals() {
  for (const int signal : kCaught) std::signal(signal, SIG_DFL);
}

int StopSignals::received() const { return g_first.load(); }

int StopSignals::count() const { return g_count.load(); }

}  // namespace vit::app
