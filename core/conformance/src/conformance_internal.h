/* What the files of the conformance suite share and nothing else sees: operand sizes, the result
 * list, and the run of one case against several targets (the reference runs once). */
#ifndef VT_CONFORMANCE_INTERNAL_H
#define VT_CONFORMANCE_INTERNAL_H

#include "vt/conformance.h"

int64_t vt_conf_operand_nelem(const vt_conf_operand *o);
size_t vt_conf_operand_nbytes(const vt_conf_operand *o);

/* A result of case c on target label with nothing judged yet (verdict pass, no worst element). */
void vt_conf_fill_result(vt_conf_result *res, const vt_conf_case *c, const char *label);
/* Appends r to rep and calls o->on_result (o may be NULL). */
vt_status vt_conf_report_add(vt_conf_report *rep, const vt_conf_result *r, const vt_conf_options *o);
/* Is op selected by o->op (NULL or empty: every op)? */
int vt_conf_op_selected(const vt_conf_options *o, vt_op op);
/* One case on nt targets: materialises it, runs the reference once (unless the case carries expected
 * values) and appends one result per target. */
vt_status vt_conf_run_case_targets(vt_backend *ref, vt_backend *const *targets, const char *const *labels, int nt,
                                   vt_conf_case *c, const vt_conf_options *o, vt_conf_report *rep);

#endif
