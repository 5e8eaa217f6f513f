// CKernels: the small C inner loops of TernaryKit, plus run-time CPU feature detection.
//
// Rule of the project: only innermost loops live here (see docs/PERFORMANCE.md). Layout,
// packing, dispatch, threading and the algorithms' structure are Swift.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stdint.h>
#include <stddef.h>

#include "cpu_features.h"
#include "bitpacked.h"
#include "bitpacked_amx.h"
#include "rsr.h"
#include "vector_ops.h"
#include "attention.h"
#include "gemv.h"
#include "quantize.h"
#include "fileops.h"
#include "lowrank.h"
#include "elementwise.h"
#include "rowsum.h"

#endif
