/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* [policy NAME] sections and the choice of a migration policy (config.h, migschedule.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"

void config_policies_free(Config *c)
{
        for (size_t i = 0; i < c->n_policies; i++)
                free(c->policies[i].file);
        free(c->policies);
        c->policies = NULL;
        c->n_policies = 0;
}

const MigSchedule *config_find_policy(const Config *c, const char *name)
{
        const MigSchedule *s = mig_schedule_builtin(name);

        for (size_t i = 0; !s && name && i < c->n_policies; i++)
                if (streq(c->policies[i].schedule.name, name))
                        s = &c->policies[i].schedule;
        return s;
}

int config_policy_open(Config *c, const char *name, const char *file, unsigned line,
                       const char **ret_error)
{
        ConfigPolicy *t;
        size_t i;

        if (!mig_policy_name_is_valid(name))
                return *ret_error = "expected [policy NAME] with NAME of 1 to 63 of a-z, 0-9, - "
                                    "and _",
                       -EINVAL;
        if (mig_schedule_builtin(name))
                return *ret_error = "is a built-in policy; give yours another name", -EEXIST;
        for (i = 0; i < c->n_policies; i++)
                if (streq(c->policies[i].schedule.name, name))
                        break;
        if (i == c->n_policies) {
                t = realloc(c->policies, sizeof(ConfigPolicy) * (c->n_policies + 1));
                if (!t)
                        return -ENOMEM;
                c->policies = t;
                c->policies[c->n_policies++] = (ConfigPolicy){};
        }
        /* opened again (a drop-in): its steps are the new ones, not added to the old */
        t = &c->policies[i];
        free(t->file);
        *t = (ConfigPolicy){ .file = strdup(file), .line = line };
        if (!t->file)
                return -ENOMEM;
        snprintf(t->schedule.name, sizeof(t->schedule.name), "%s", name);
        return (int)i;
}

int config_policy_set(Config *c, size_t index, const char *key, const char *value,
                      const char **ret_error)
{
        MigSchedule *s = &c->policies[index].schedule;
        MigStep step;
        int r;

        if (!streq(key, "step"))
                return *ret_error = "the only key of a [policy NAME] section is 'step'", -ENOKEY;
        if (s->n_steps >= MIG_SCHEDULE_MAX_STEPS)
                return *ret_error = "a policy has at most 16 steps", -E2BIG;
        r = mig_step_parse(value, &step, ret_error);
        if (r < 0)
                return r;
        s->steps[s->n_steps++] = step;
        return 0;
}

int config_policy_permitted(const Config *c, const MigSchedule *s, char *error, size_t size)
{
        if (mig_schedule_uses(s, MIG_ACTION_AUTO_CONVERGE) && !c->migration.permit_auto_converge)
                return snprintf(error, size,
                                "migration policy %s starts with auto-converge, which [migration] "
                                "permit_auto_converge = no forbids on this node",
                                s->name),
                       -EPERM;
        if (mig_schedule_uses(s, MIG_ACTION_POST_COPY) && !c->migration.permit_post_copy)
                return snprintf(error, size,
                                "migration policy %s switches to post-copy, which [migration] "
                                "permit_post_copy = no forbids on this node",
                                s->name),
                       -EPERM;
        return 0;
}
