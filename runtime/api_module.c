/* api_module.c — what a module tells about its model through the C API:
 * its name and its tensors (kind, shape, distribution, family).
 *
 * Tensors are listed in the model's order: the declared ones, then the
 * params that rules' relaxations have added so far (back.W, psi.v), so a
 * listing can grow after a session with such a rule is opened.  Names are
 * owned by the module's arena and stay valid until fep_module_free. */
#include "api_impl.h"

int fep_api_version(void) { return FEP_API_VERSION; }

const char *fep_module_name(const FepModule *m) { return m && m->c.model ? m->c.model->name : ""; }

FepStatus fep_tensor_count(const FepModule *m, int *n)
{
    if (!m || !n)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_tensor_count: NULL argument");
    *n = m->c.model->n_tensors;
    return api_ok();
}

FepStatus fep_tensor_at(const FepModule *m, int index, FepTensorInfo *out)
{
    if (!m || !out)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_tensor_at: NULL argument");
    const Model *model = m->c.model;
    if (index < 0 || index >= model->n_tensors)
        return api_fail(FEP_ERROR_ARGUMENT, "fep_tensor_at: index %d is not in 0..%d", index, model->n_tensors - 1);
    const Tensor *t = &model->tensors[index];
    const Shape *shape = ir_shape(&model->g, t->shape);
    *out = (FepTensorInfo){
        .name = t->name,
        .kind = (FepKind)t->role,
        .rank = shape->rank,
        .categorical = t->dist == DIST_CATEGORICAL,
        .family = t->family,
        .family_index = t->family ? t->family_index : 0,
        .rule_made = t->rule_param != RULE_PARAM_NONE,
    };
    for (int i = 0; i < shape->rank; i++)
        out->dims[i] = shape->dims[i];
    return api_ok();
}

/* FepKind mirrors Role value for value. */
_Static_assert((int)FEP_KIND_PARAM == ROLE_PARAM && (int)FEP_KIND_CONST == ROLE_CONST &&
                   (int)FEP_KIND_INPUT == ROLE_INPUT && (int)FEP_KIND_LATENT == ROLE_LATENT &&
                   (int)FEP_KIND_OBSERVED == ROLE_OBSERVED,
               "FepKind and Role must agree");
