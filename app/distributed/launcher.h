#pragma once

#include <cstdint>

namespace vit::app {

// `vit train --nproc N`: runs this same command line N times on this machine as ranks 0..N-1 of
// one job (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT unless one
// is set), forwards SIGINT/SIGTERM to them once, stops the others when one fails, and returns
// the first failing rank's exit code (0 when every rank succeeds).
int launch_local_ranks(int64_t nproc);

// A loopback port nobody listens on now (the kernel's choice for port 0).
int free_loopback_port();

}  // namespace vit::app
