/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The a{sv} options of Migrate and CheckMigration, and those of ForceDownWithOptions (read
 * from the same dictionary), come from any D-Bus client. The input
 * builds the dictionary: its first byte says which of auto-converge and post-copy
 * [migration] permits, then each entry takes a key (one of the known ones, or raw bytes), a
 * type (b, t, u, s, i, d, as) and a value from the bytes that follow. Beyond "no crash, no
 * leak": the options are read, or refused with InvalidArgs and a message saying what was
 * expected; never another error (which would reach the caller as a bare errno).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "config.h"
#include "force-down-opts.h"
#include "fuzz.h"
#include "migrate-opts.h"
#include "util.h"

static const char *const keys[] = {
        "block",           "bandwidth",          "auto-converge",  "post-copy", "tls",
        "max-downtime-ms", "completion-timeout", "timeout-action", "",          "abort",
        "insist",
};

static uint64_t take(const uint8_t **p, const uint8_t *end, size_t n)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n && *p < end; i++, (*p)++)
                v = v << 8 | **p;
        return v;
}

static int append_entry(sd_bus_message *m, const uint8_t **p, const uint8_t *end)
{
        char key[16] = "", str[16] = "";
        unsigned k = (unsigned)take(p, end, 1), t = (unsigned)take(p, end, 1);
        uint64_t v = take(p, end, 8);
        int r;

        if (k % 12 < ELEMENTSOF(keys))
                snprintf(key, sizeof(key), "%s", keys[k % 12]);
        else /* raw: up to 15 bytes, stopping at a NUL */
                for (size_t i = 0; i < 15 && *p < end && **p; i++, (*p)++)
                        key[i] = (char)(**p >= 0x20 && **p < 0x7f ? **p : '?');
        memcpy(str, &v, sizeof(v));
        for (size_t i = 0; i < 8; i++)
                if (str[i] && ((unsigned char)str[i] < 0x20 || (unsigned char)str[i] >= 0x7f))
                        str[i] = '?';
        if (t % 8 == 7) /* a known value of timeout-action */
                snprintf(str, sizeof(str), "%s", v % 2 ? "abort" : "force_complete");

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", key);
        if (r < 0)
                return r;
        switch (t % 8) {
        case 0:
                r = sd_bus_message_append(m, "v", "b", (int)(v & 1));
                break;
        case 1:
                r = sd_bus_message_append(m, "v", "t", v);
                break;
        case 2:
                r = sd_bus_message_append(m, "v", "u", (uint32_t)v);
                break;
        case 3:
        case 7:
                r = sd_bus_message_append(m, "v", "s", str);
                break;
        case 4:
                r = sd_bus_message_append(m, "v", "i", (int32_t)v);
                break;
        case 5:
                r = sd_bus_message_append(m, "v", "d", (double)(int64_t)v);
                break;
        default:
                r = sd_bus_message_append(m, "v", "as", 1, str);
                break;
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(config_freep) Config *c = NULL;
        sd_bus *bus = NULL;
        sd_bus_message *m = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const uint8_t *p = data, *end = data + size;
        MigrateOptions opts;
        ForceDownOptions fd_opts;
        ConfigDiags diags = { 0 };
        unsigned flags;
        int sv[2], r;

        if (size < 1 || config_new(&c) < 0)
                return 0;
        (void)config_finish(c, &diags);
        config_diags_clear(&diags);
        flags = (unsigned)take(&p, end, 1);
        c->migration.permit_auto_converge = flags & 1;
        c->migration.permit_post_copy = flags & 2;
        migrate_options_defaults(c, &opts);

        /* messages need a bus that is not unset: one started on a socket pair, which is
         * never used to send */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                return 0;
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_fd(bus, sv[0], sv[0]);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, "org.hostwarden.Warden1",
                                                   "/org/hostwarden/Warden1",
                                                   "org.hostwarden.Warden1.Node", "Migrate");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (unsigned i = 0; r >= 0 && p < end && i < 64; i++)
                r = append_entry(m, &p, end);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_seal(m, 1, 0);
        if (r >= 0)
                r = sd_bus_message_rewind(m, true);
        if (r < 0)
                abort(); /* the harness must reach the parser */
        if (r >= 0) {
                r = migrate_options_read(m, c, &opts, &error);
                if (r < 0 && (!sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS) ||
                              isempty(error.message)))
                        abort(); /* a refusal that is not InvalidArgs saying why */
                sd_bus_error_free(&error);
                if (sd_bus_message_rewind(m, true) < 0)
                        abort();
                r = force_down_options_read(m, &fd_opts, &error);
                if (r < 0 && (!sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS) ||
                              isempty(error.message)))
                        abort();
        }
        sd_bus_error_free(&error);
        sd_bus_message_unref(m);
        sd_bus_close_unref(bus); /* no flush: nobody reads the other end */
        if (!bus)
                close(sv[0]);
        close(sv[1]);
        return 0;
}
