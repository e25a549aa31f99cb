#pragma once
// fastoptim: torch.optim's optimizers as header-only C++17. Include this header for everything.

#include "version.hpp"
#include "core/parallel.hpp"
#include "core/span.hpp"
#include "core/optimizer.hpp"
#include "sgd/sgd.hpp"
#include "adam/adam.hpp"
#include "rmsprop/rmsprop.hpp"
