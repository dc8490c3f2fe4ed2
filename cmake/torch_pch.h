// Precompiled for every target (see VitTarget.cmake); never include this file directly.
#pragma once
#include <torch/torch.h>
