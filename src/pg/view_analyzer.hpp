// add_view's analyser (view_analyzer.cpp): its setting.
#pragma once

namespace sgivm::pg {

// stategrid_ivm.view_strategy: 'auto' (delta rules where the view has them) or 'recompute'
// (scoped recomputation for every view planned: a way back, and a second strategy for tests).
enum ViewStrategy { kStrategyAuto = 0, kStrategyRecompute = 1 };
extern int guc_view_strategy;

}  // namespace sgivm::pg
