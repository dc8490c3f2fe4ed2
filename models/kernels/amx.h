#pragma once

namespace vit::models {

// Whether the CPU has AMX-BF16 (Intel's tile units for bf16 products) and the OS enables their
// register state (CPUID, XCR0 bits 17 and 18). Not every compiler's __builtin_cpu_supports knows
// AMX (clang 14's does not).
bool amx_bf16_enabled();

// Whether this process may run tile instructions: amx_bf16_enabled() and Linux grants the process
// the tile data state, which it must ask for once (arch_prctl ARCH_REQ_XCOMP_PERM; oneDNN asks for
// the same when it first runs on the tiles). Asked on the first call.
bool amx_tiles_permitted();

}  // namespace vit::models
