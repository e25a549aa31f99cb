#pragma once
// fastoptim: torch.optim's optimizers as header-only C++17. Include this header for everything.

#include "version.hpp"
#include "core/parallel.hpp"
#include "core/span.hpp"
#include "core/optimizer.hpp"
#include "sgd/sgd.hpp"
#include "adam/adam.hpp"
#include "rmsprop/rmsprop.hpp"
#include "lr_scheduler/lr_scheduler.hpp"
#include "lr_scheduler/step_lr.hpp"
#include "lr_scheduler/reduce_lr_on_plateau.hpp"
