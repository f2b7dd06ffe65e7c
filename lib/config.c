/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Reading hostwarden.conf and its drop-ins with libinih into a Config: diagnostics, the Config
 * object, sections and continuation lines, the checks of keys that depend on each other, and
 * which secrets are kept. The keys themselves and their value parsers are in config-items.c.
 */

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-internal.h"
#include "console-tls.h"
#include "mignet.h"

#define CONFIG_MAX_FILE_SIZE (1024 * 1024)
/* libinih's fixed limits (ini.h: INI_MAX_LINE, MAX_SECTION, MAX_NAME); longer input is
 * reported instead of being silently cut. */
#define INIH_MAX_LINE    INI_MAX_LINE
#define INIH_MAX_SECTION 50
#define INIH_MAX_NAME    50

/* ---- diagnostics ------------------------------------------------------------------------ */

void config_diags_clear(ConfigDiags *d)
{
        for (size_t i = 0; i < d->n; i++) {
                free(d->items[i].file);
                free(d->items[i].message);
        }
        free(d->items);
        *d = (ConfigDiags){ 0 };
}

const char *config_diag_format(const ConfigDiag *d, char *buf, size_t size)
{
        if (d->file && d->line > 0)
                snprintf(buf, size, "%s:%u: %s", d->file, d->line, d->message);
        else if (d->file)
                snprintf(buf, size, "%s: %s", d->file, d->message);
        else
                snprintf(buf, size, "%s", d->message);
        return buf;
}

_printf_(5, 6) static int diag(ConfigDiags *d, ConfigDiagLevel level, const char *file,
                               unsigned line, const char *format, ...)
{
        ConfigDiag *t;
        char *msg = NULL;
        va_list ap;
        int k;

        if (!d)
                return 0;
        va_start(ap, format);
        k = vasprintf(&msg, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        t = realloc(d->items, sizeof(ConfigDiag) * (d->n + 1));
        if (!t) {
                free(msg);
                return -ENOMEM;
        }
        d->items = t;
        d->items[d->n] = (ConfigDiag){
                .level = level,
                .file = file ? strdup(file) : NULL,
                .line = line,
                .message = msg,
        };
        d->n++;
        if (level == CONFIG_DIAG_ERROR)
                d->n_errors++;
        return 0;
}

/* ---- the Config object ------------------------------------------------------------------ */

/* Where each item was last set, for errors about keys that depend on each other. */
typedef struct ItemLocation {
        const char *file; /* points into Config.files */
        unsigned line;
} ItemLocation;

typedef struct ConfigPrivate {
        Config config;
        ItemLocation locations[CONFIG_N_ITEMS];
        bool skip_secrets;       /* config_load_without_secrets() ... */
        bool keep_store_secrets; /* ... but config_load_with_store_secrets() */
} ConfigPrivate;

static ItemLocation *item_location(Config *c, const ConfigItem *item)
{
        return &((ConfigPrivate *)c)->locations[item - config_items];
}

int config_new(Config **ret)
{
        ConfigPrivate *p;
        Config *c;

        p = calloc(1, sizeof(ConfigPrivate));
        if (!p)
                return -ENOMEM;
        c = &p->config;

        c->node.disable_action = DISABLE_ACTION_NONE;
        c->cluster.store = STORE_BACKEND_DIR;
        c->cluster.heartbeat_interval = 10 * USEC_PER_SEC;
        c->cluster.down_after = 60 * USEC_PER_SEC;
        c->migration.max_concurrent = 1;
        c->migration.bandwidth = 0;
        c->migration.downtime = 500 * USEC_PER_MSEC;
        c->migration.downtime_steps = 10;
        c->migration.downtime_delay = 75 * USEC_PER_SEC;
        c->migration.stall_iterations = 3;
        c->migration.completion_timeout = 800 * USEC_PER_SEC;
        c->migration.shutdown_timeout = 60 * USEC_PER_SEC; /* Nova's shutdown_timeout */
        c->migration.timeout_action = TIMEOUT_ACTION_ABORT;
        c->migration.tls = MIGRATION_TLS_AUTO;
        c->migration.port_min = 49152;
        c->migration.port_max = 49215;
        c->migration.announce_rounds = 5;
        c->migration.announce_interval = 100 * USEC_PER_MSEC;
        c->firewall.enable = true;
        c->firewall.open_window = 10 * USEC_PER_MINUTE;
        c->firewall.console_port_min = 5900;
        c->firewall.console_port_max = 6923;
        c->recovery.confirm_after = 30 * USEC_PER_SEC;
        c->recovery.max_lost = 500;
        c->recovery.self_fence_after = 60 * USEC_PER_SEC;
        c->recovery.max_restart = 3;
        c->recovery.max_relocate = 1;
        c->recovery.default_ha = HA_RESTART;
        c->history.archive_after = 90 * USEC_PER_DAY; /* the seeds' database cleaning */
        c->history.purge_after = 14 * USEC_PER_DAY;
        c->maintenance.strategy = MAINTENANCE_MIGRATE;
        c->metrics.interval = 15 * USEC_PER_SEC; /* node_exporter's usual scrape interval */
        c->console.listen = CONSOLE_LISTEN_ANY;
        c->hook.refuse_incoming_when_disabled = false;

        if (free_and_strdup(&c->node.instances_path, "/var/lib/nova/instances") < 0 ||
            free_and_strdup(&c->node.compute_unit, "nova-compute.service") < 0 ||
            free_and_strdup(&c->migration.policy, MIG_POLICY_DEFAULT) < 0 ||
            free_and_strdup(&c->metrics.textfile, METRICS_TEXTFILE_DEFAULT) < 0) {
                config_free(c);
                return -ENOMEM;
        }

        *ret = c;
        return 0;
}

static void peer_done(ConfigPeer *p)
{
        free(p->name);
        free(p->file);
        config_items_free(p, true);
}

Config *config_free(Config *c)
{
        if (!c)
                return NULL;
        config_items_free(c, false);
        for (size_t i = 0; i < c->n_peers; i++)
                peer_done(&c->peers[i]);
        free(c->peers);
        config_policies_free(c);
        strv_free(c->firewall.migration_admitted);
        strv_free(c->files);
        strv_free(c->secret_files);
        free((ConfigPrivate *)c);
        return NULL;
}

const ConfigPeer *config_find_peer(const Config *c, const char *name)
{
        for (size_t i = 0; i < c->n_peers; i++)
                if (streq(c->peers[i].name, name))
                        return &c->peers[i];
        return NULL;
}

const char *config_secret_file_exposure(unsigned mode, unsigned gid)
{
        if (mode & 0006)
                return mode & 0002 ? "writable by others" : "readable by others";
        if ((mode & 0060) && gid != 0)
                return mode & 0020 ? "writable by its group" : "readable by its group";
        return NULL;
}

static int peer_get(Config *c, const char *name, const char *file, unsigned line, ConfigPeer **ret)
{
        ConfigPeer *t;

        for (size_t i = 0; i < c->n_peers; i++)
                if (streq(c->peers[i].name, name)) {
                        *ret = &c->peers[i];
                        return 0;
                }

        t = realloc(c->peers, sizeof(ConfigPeer) * (c->n_peers + 1));
        if (!t)
                return -ENOMEM;
        c->peers = t;
        t = &c->peers[c->n_peers];
        *t = (ConfigPeer){ .line = line };
        if (free_and_strdup(&t->name, name) < 0 || free_and_strdup(&t->file, file) < 0) {
                peer_done(t);
                return -ENOMEM;
        }
        c->n_peers++;
        *ret = t;
        return 0;
}

/* ---- parsing one file with libinih ------------------------------------------------------ */

typedef struct ParseCtx {
        Config *config;
        ConfigDiags *diags;
        const char *file; /* owned by config->files */
        const char *p;    /* next unread byte of the text */
        unsigned line;    /* line number of the line last handed to inih */
        char section[INIH_MAX_SECTION + 1];
        char *peer_name;      /* [peer NAME] currently open, else NULL */
        int policy;           /* [policy NAME] currently open: its index, else -1 */
        bool section_skipped; /* a section we do not read: said at its header, keys ignored */
        const ConfigItem *last_item; /* the key the previous value line set */
        bool continuation;           /* the current line continues last_item */

        /* A value is parsed once it is complete (a multi-line one can continue on the next
         * line): the item, where it goes, where it started, and the text so far. */
        const ConfigItem *pending;
        void *pending_dst;
        unsigned pending_line;
        char pending_where[INIH_MAX_SECTION + 8];
        char *accumulated;
        size_t acc_len, acc_size;
        int error;            /* -ENOMEM and the like: stop */
        bool others_can_read; /* the file's mode lets anyone read it: no secrets in it */
} ParseCtx;

/* [policy NAME]: true when s is one (opened, or skipped with an error said). */
static bool ctx_enter_policy(ParseCtx *ctx, const char *s)
{
        const char *name = startswith(s, "policy"), *why = NULL;
        int r;

        if (!name || (*name != ' ' && *name != '\t'))
                return false;
        name += strspn(name, " \t");
        r = config_policy_open(ctx->config, name, ctx->file, ctx->line, &why);
        if (r == -ENOMEM)
                ctx->error = r;
        else if (r < 0) {
                diag(ctx->diags, CONFIG_DIAG_ERROR, ctx->file, ctx->line, "[%s]: %s", s, why);
                ctx->section_skipped = true;
        } else
                ctx->policy = r;
        return true;
}

static void ctx_enter_section(ParseCtx *ctx, const char *raw)
{
        char name[INIH_MAX_LINE + 1];
        const char *end = strchr(raw, ']');
        size_t n = end ? (size_t)(end - raw) : strlen(raw);
        const char *peer;
        char *s;
        int r;

        if (n >= sizeof(name))
                n = sizeof(name) - 1;
        memcpy(name, raw, n);
        name[n] = 0;
        s = strstrip(name);

        free(ctx->peer_name);
        ctx->peer_name = NULL;
        ctx->policy = -1;
        ctx->last_item = NULL;
        ctx->section_skipped = false;

        if (n >= INIH_MAX_SECTION) {
                diag(ctx->diags, CONFIG_DIAG_ERROR, ctx->file, ctx->line,
                     "section name '%s' is too long (at most %d characters)", s,
                     INIH_MAX_SECTION - 1);
                ctx->section_skipped = true;
                return;
        }

        peer = startswith(s, "peer");
        if (peer && (*peer == ' ' || *peer == '\t' || *peer == 0)) {
                while (*peer == ' ' || *peer == '\t')
                        peer++;
                if (!hostname_is_valid(peer)) {
                        diag(ctx->diags, CONFIG_DIAG_ERROR, ctx->file, ctx->line,
                             "[%s]: expected [peer NAME] with NAME the peer's node name", s);
                        ctx->section_skipped = true;
                        return;
                }
                ConfigPeer *p;
                r = peer_get(ctx->config, peer, ctx->file, ctx->line, &p);
                if (r < 0) {
                        ctx->error = r;
                        return;
                }
                ctx->peer_name = strdup(peer);
                if (!ctx->peer_name)
                        ctx->error = -ENOMEM;
                return;
        }

        if (ctx_enter_policy(ctx, s))
                return;
        if (!config_section_known(s) || streq(s, "peer")) {
                const char *near = config_section_suggestion(s);

                diag(ctx->diags, CONFIG_DIAG_WARNING, ctx->file, ctx->line,
                     "unknown section [%s], its keys are ignored%s%s%s", s,
                     near ? "; did you mean [" : "", strempty(near), near ? "]?" : "");
                ctx->section_skipped = true;
        }
}

static void ctx_flush(ParseCtx *ctx);

/* libinih's reader callback: hands it one line at a time so we know the line numbers. */
static char *ctx_reader(char *str, int num, void *stream)
{
        ParseCtx *ctx = stream;
        const char *eol;
        size_t n;

        if (ctx->error < 0 || !*ctx->p)
                return NULL;

        eol = strchr(ctx->p, '\n');
        n = eol ? (size_t)(eol - ctx->p) + 1 : strlen(ctx->p);
        ctx->line++;
        ctx->continuation = false;

        /* All n bytes (\r and \n included) and a NUL must fit inih's line buffer. */
        if (n + 1 > (size_t)num) {
                diag(ctx->diags, CONFIG_DIAG_ERROR, ctx->file, ctx->line,
                     "line is too long (at most %d characters)", num - 2);
                ctx->p += n;
                ctx->last_item = NULL;
                strcpy(str, "\n");
                return str;
        }
        memcpy(str, ctx->p, n);
        str[n] = 0;
        ctx->p += n;

        /* The white space libinih's lskip() skips, so both see the same first character. */
        size_t lead = strspn(str, " \t\r\v\f");
        char c = str[lead];
        if (c == 0 || c == '\n' || c == '#' || c == ';')
                return str; /* blank or comment: does not end a multi-line value */

        if (c == '[') {
                ctx_flush(ctx);
                /* libinih would take an indented section header as a continuation line. */
                memmove(str, str + lead, strlen(str + lead) + 1);
                ctx_enter_section(ctx, str + 1);
                return str;
        }

        if (lead > 0) {
                if (ctx->last_item && ctx->last_item->multiline) {
                        ctx->continuation = true;
                        return str;
                }
                /* libinih would take an indented line as a continuation of the previous
                 * value; for single-value keys, indentation is just layout. */
                memmove(str, str + lead, strlen(str + lead) + 1);
        }
        return str;
}

static void *item_target(ParseCtx *ctx, const ConfigItem *item)
{
        if (streq(item->section, "peer")) {
                ConfigPeer *p;

                if (!ctx->peer_name)
                        return NULL;
                p = (ConfigPeer *)config_find_peer(ctx->config, ctx->peer_name);
                return p ? (char *)p + item->offset : NULL;
        }
        return (char *)ctx->config + item->offset;
}

static int acc_append(ParseCtx *ctx, const char *sep, const char *value)
{
        size_t need = ctx->acc_len + strlen(sep) + strlen(value) + 1;

        if (need > ctx->acc_size) {
                size_t size = MAX(need, ctx->acc_size * 2);
                char *t = realloc(ctx->accumulated, size);

                if (!t)
                        return -ENOMEM;
                ctx->accumulated = t;
                ctx->acc_size = size;
        }
        ctx->acc_len += (size_t)sprintf(ctx->accumulated + ctx->acc_len, "%s%s", sep, value);
        return 0;
}

/* Parses the pending value, now complete. */
static void ctx_flush(ParseCtx *ctx)
{
        const ConfigItem *item = ctx->pending;
        const char *v = ctx->accumulated ? ctx->accumulated : "";
        char shown[64];
        int r;

        if (!item)
                return;
        ctx->pending = NULL;
        r = item->parse(item, v, ctx->pending_dst);
        if (r == -ENOMEM) {
                ctx->error = r;
                return;
        }
        if (r >= 0 && streq(item->key, "etcd_password") && ctx->others_can_read) {
                diag(ctx->diags, CONFIG_DIAG_ERROR, ctx->file, ctx->pending_line,
                     "[%s] %s: this file is readable by every user; keep the password in a "
                     "file only root (and group hostwarden) can read (chmod o-r %s)",
                     ctx->pending_where, item->key, ctx->file);
                return;
        }
        if (r < 0) {
                if (item->secret)
                        snprintf(shown, sizeof(shown), "(value not shown)");
                else
                        snprintf(shown, sizeof(shown), "'%.40s%s'", v, strlen(v) > 40 ? "..." : "");
                diag(ctx->diags, CONFIG_DIAG_ERROR, ctx->file, ctx->pending_line,
                     "[%s] %s = %s: expected %s", ctx->pending_where, item->key, shown,
                     item->expected);
                return;
        }
        *item_location(ctx->config, item) = (ItemLocation){ ctx->file, ctx->pending_line };
}

/* Is this secret left out of the configuration being loaded? */
static bool skipped(const ConfigPrivate *p, const ConfigItem *item)
{
        return p->skip_secrets && !(p->keep_store_secrets && streq(item->section, "cluster"));
}

static int ctx_handler(void *user, const char *section, const char *name, const char *value)
{
        ParseCtx *ctx = user;
        /* Our reader decides sections ([peer NAME] included), never inih's "peer" alone. */
        const char *sname = ctx->peer_name ? "peer" : streq(section, "peer") ? "" : section;
        const ConfigItem *item;

        if (ctx->error < 0 || ctx->section_skipped)
                return 1;

        if (ctx->continuation && ctx->last_item) {
                if (ctx->pending == ctx->last_item && acc_append(ctx, "\n", value) < 0)
                        ctx->error = -ENOMEM;
                return 1;
        }

        ctx_flush(ctx);
        if (ctx->policy >= 0) {
                const char *why = NULL;
                int r = config_policy_add_key(ctx->config, ctx->policy, name, value, &why);

                if (r == -ENOMEM)
                        ctx->error = r;
                else if (r < 0)
                        diag(ctx->diags, CONFIG_DIAG_ERROR, ctx->file, ctx->line,
                             "[policy %s] %s = %s: expected %s",
                             ctx->config->policies[ctx->policy].schedule.name, name, value, why);
                ctx->last_item = NULL;
                return 1;
        }
        item = config_item_find(sname, name);
        if (!item) {
                const char *near = config_key_suggestion(sname, name);
                char hint[96] = "";

                if (near)
                        snprintf(hint, sizeof(hint), "; did you mean '%s'?", near);
                if (ctx->peer_name)
                        diag(ctx->diags, CONFIG_DIAG_WARNING, ctx->file, ctx->line,
                             "unknown key '%s' in [peer %s], ignored%s", name, ctx->peer_name,
                             hint);
                else
                        diag(ctx->diags, CONFIG_DIAG_WARNING, ctx->file, ctx->line,
                             "unknown key '%s' in [%s], ignored%s", name, section, hint);
                ctx->last_item = NULL;
                return 1;
        }
        ctx->last_item = item;
        if (item->secret && !strv_contains(ctx->config->secret_files, ctx->file) &&
            strv_extend(&ctx->config->secret_files, ctx->file) < 0) {
                ctx->error = -ENOMEM;
                return 1;
        }
        /* Not parsed, not kept: its continuation lines are skipped with it (pending stays
         * NULL). */
        if (item->secret && skipped((ConfigPrivate *)ctx->config, item))
                return 1;
        ctx->pending_dst = item_target(ctx, item);
        if (!ctx->pending_dst)
                return 1;
        ctx->pending = item;
        ctx->pending_line = ctx->line;
        if (ctx->peer_name)
                snprintf(ctx->pending_where, sizeof(ctx->pending_where), "peer %s", ctx->peer_name);
        else
                snprintf(ctx->pending_where, sizeof(ctx->pending_where), "%s", sname);
        ctx->acc_len = 0;
        if (acc_append(ctx, "", value) < 0)
                ctx->error = -ENOMEM;
        return 1;
}

static int parse_text(Config *c, const char *filename, const char *text, bool others_can_read,
                      ConfigDiags *diags)
{
        ParseCtx ctx = {
                .config = c,
                .diags = diags,
                .policy = -1,
                .p = text,
                .others_can_read = others_can_read,
        };
        int r;

        /* Locations point into c->files, which lives as long as c. */
        r = strv_extend(&c->files, filename);
        if (r < 0)
                return r;
        ctx.file = c->files[strv_length(c->files) - 1];

        r = ini_parse_stream(ctx_reader, &ctx, ctx_handler, &ctx);
        ctx_flush(&ctx);
        if (ctx.accumulated) /* the last values, secrets among them */
                explicit_bzero(ctx.accumulated, ctx.acc_size);
        free(ctx.accumulated);
        free(ctx.peer_name);
        if (ctx.error < 0)
                return ctx.error;
        if (r > 0) {
                /* libinih names only its first syntax error. */
                diag(diags, CONFIG_DIAG_ERROR, ctx.file, (unsigned)r,
                     "expected '[section]', 'key = value' or a comment");
        } else if (r < 0)
                return -ENOMEM;
        return 0;
}

int config_parse_text(Config *c, const char *filename, const char *text, ConfigDiags *diags)
{
        return parse_text(c, filename, text, false, diags);
}

static int parse_file(Config *c, const char *path, ConfigDiags *diags)
{
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t size;
        int r;

        r = read_full_file(path, CONFIG_MAX_FILE_SIZE, &text, &size);
        if (r == -ENOENT)
                return 0;
        if (r == -EFBIG)
                return diag(diags, CONFIG_DIAG_ERROR, path, 0, "file is larger than %d bytes",
                            CONFIG_MAX_FILE_SIZE);
        if (r < 0)
                return diag(diags, CONFIG_DIAG_ERROR, path, 0, "cannot read: %s", strerror(-r));
        if (strlen(text) != size)
                return diag(diags, CONFIG_DIAG_ERROR, path, 0,
                            "file contains a NUL byte: not a text file");

        /* read above: a stat that fails now is a file replaced meanwhile, take it as open */
        r = parse_text(c, path, text, stat(path, &st) < 0 || (st.st_mode & S_IROTH), diags);
        explicit_bzero(text, size); /* it may hold secrets */
        return r;
}

static int dropin_filter(const struct dirent *de)
{
        size_t n = strlen(de->d_name);

        return de->d_name[0] != '.' && n > 5 && streq(de->d_name + n - 5, ".conf");
}

/* The [cluster] etcd_* keys that only make sense together. */
static void config_finish_etcd(Config *c, ConfigDiags *diags)
{
        const ConfigItem *it;
        ItemLocation *loc;
        bool plain = false;

        STRV_FOREACH (e, c->cluster.etcd_endpoints)
                if (startswith(*e, "http://")) {
                        plain = true;
                        if (!c->cluster.etcd_insecure) {
                                it = config_item_find("cluster", "etcd_endpoints");
                                loc = item_location(c, it);
                                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                                     "[cluster] etcd_endpoints: '%s' is plain HTTP, readable "
                                     "and forgeable on the network: use https:// (with "
                                     "etcd_cacert, etcd_cert, etcd_key), or set etcd_insecure = "
                                     "yes to accept that",
                                     *e);
                                break;
                        }
                }
        if (plain && c->cluster.etcd_password) {
                it = config_item_find("cluster", "etcd_password");
                loc = item_location(c, it);
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[cluster] etcd_password would travel in the clear to the http:// members "
                     "of etcd_endpoints: use https://");
        }
        if (!c->cluster.etcd_cert != !c->cluster.etcd_key) {
                it = config_item_find("cluster", c->cluster.etcd_cert ? "etcd_cert" : "etcd_key");
                loc = item_location(c, it);
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[cluster] %s needs %s: the client certificate and its key go together",
                     it->key, c->cluster.etcd_cert ? "etcd_key" : "etcd_cert");
        }
        if (!c->cluster.etcd_user != !c->cluster.etcd_password &&
            !skipped((ConfigPrivate *)c, config_item_find("cluster", "etcd_password"))) {
                it = config_item_find("cluster",
                                      c->cluster.etcd_user ? "etcd_user" : "etcd_password");
                loc = item_location(c, it);
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[cluster] %s needs %s: etcd authenticates a user by its password", it->key,
                     c->cluster.etcd_user ? "etcd_password" : "etcd_user");
        }
}

/* Every [policy NAME] has steps; [migration] policy names one this node can run. */
static void config_finish_policies(Config *c, ConfigDiags *diags)
{
        ItemLocation *loc = item_location(c, config_item_find("migration", "policy"));
        const MigSchedule *s;
        char why[256];

        for (size_t i = 0; i < c->n_policies; i++)
                if (c->policies[i].schedule.n_steps == 0)
                        diag(diags, CONFIG_DIAG_ERROR, c->policies[i].file, c->policies[i].line,
                             "[policy %s] has no step: add 'step = TRIGGER: ACTION' lines",
                             c->policies[i].schedule.name);
        s = config_find_policy(c, c->migration.policy);
        if (!s)
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[migration] policy = %s: no such policy (built-in: nova, minimal-downtime, "
                     "post-copy-when-stalled, suspend-if-needed; or a [policy %s] section)",
                     c->migration.policy, c->migration.policy);
        else if (config_policy_permitted(c, s, why, sizeof(why)) < 0)
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line, "[migration] policy: %s", why);
}

/* Self-fencing must leave the heartbeat a few chances, and the peers a margin (recovery.md). */
static void config_finish_recovery(Config *c, ConfigDiags *diags)
{
        const ConfigItem *it = config_item_find("recovery", "self_fence_after");
        ItemLocation *loc = item_location(c, it);

        if (c->recovery.self_fence && c->recovery.self_fence_after < c->cluster.down_after)
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[recovery] self_fence_after must be at least [cluster] down_after, or a "
                     "node would power itself off before its peers even see it down");
        STRV_FOREACH (n, c->recovery.reserved_nodes)
                if (!config_find_peer(c, *n) && !streq_ptr(*n, c->node.name)) {
                        it = config_item_find("recovery", "reserved_nodes");
                        loc = item_location(c, it);
                        diag(diags, CONFIG_DIAG_WARNING, loc->file, loc->line,
                             "[recovery] reserved_nodes names %s, which is neither this node "
                             "nor a [peer]",
                             *n);
                }
}

int config_finish(Config *c, ConfigDiags *diags)
{
        const ConfigItem *it;
        ItemLocation *loc;

        if (!c->node.name) {
                char host[HOST_NAME_MAX + 1] = "";

                if (gethostname(host, sizeof(host)) < 0 || !hostname_is_valid(host))
                        diag(diags, CONFIG_DIAG_ERROR, NULL, 0,
                             "[node] name is not set and the host name is not usable; set it");
                else if (free_and_strdup(&c->node.name, host) < 0)
                        return -ENOMEM;
        }

        if (!c->cluster.state_dir &&
            asprintf(&c->cluster.state_dir, "%s/.hostwarden", c->node.instances_path) < 0) {
                c->cluster.state_dir = NULL;
                return -ENOMEM;
        }
        if (!c->locking.lockspace_dir &&
            asprintf(&c->locking.lockspace_dir, "%s/.leases", c->node.instances_path) < 0) {
                c->locking.lockspace_dir = NULL;
                return -ENOMEM;
        }

        for (size_t i = 0; i < c->n_peers; i++) {
                ConfigPeer *p = &c->peers[i];

                if (!p->address) {
                        diag(diags, CONFIG_DIAG_ERROR, p->file, p->line,
                             "[peer %s] has no address: set address = its migration address",
                             p->name);
                        continue;
                }
                if (!p->libvirt_uri) {
                        bool v6 = strchr(p->address, ':') != NULL;
                        if (asprintf(&p->libvirt_uri, "qemu+tls://%s%s%s/system", v6 ? "[" : "",
                                     p->address, v6 ? "]" : "") < 0) {
                                p->libvirt_uri = NULL;
                                return -ENOMEM;
                        }
                }
                if (c->node.name && streq(p->name, c->node.name))
                        diag(diags, CONFIG_DIAG_ERROR, p->file, p->line,
                             "[peer %s] names this node itself ([node] name)", p->name);
        }

        if (c->migration.port_min > c->migration.port_max) {
                it = config_item_find("migration", "port_max");
                loc = item_location(c, it);
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[migration] port_max = %u is below port_min = %u", c->migration.port_max,
                     c->migration.port_min);
        }
        if (c->firewall.console_port_min > c->firewall.console_port_max) {
                it = config_item_find("firewall", "console_port_max");
                loc = item_location(c, it);
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[firewall] console_port_max = %u is below console_port_min = %u",
                     c->firewall.console_port_max, c->firewall.console_port_min);
        }
        if (c->cluster.down_after <= c->cluster.heartbeat_interval) {
                it = config_item_find("cluster", "down_after");
                loc = item_location(c, it);
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[cluster] down_after must be longer than heartbeat_interval, or every "
                     "peer would look down between two heartbeats");
        }
        if (c->cluster.store == STORE_BACKEND_ETCD && strv_length(c->cluster.etcd_endpoints) == 0) {
                it = config_item_find("cluster", "store");
                loc = item_location(c, it);
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[cluster] store = etcd needs etcd_endpoints");
        }
        config_finish_etcd(c, diags);
        config_finish_recovery(c, diags);
        config_finish_policies(c, diags);
        if (c->console.listen == CONSOLE_LISTEN_NODE && !c->node.address) {
                it = config_item_find("console", "listen");
                loc = item_location(c, it);
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[console] listen = node needs [node] address");
        }
        c->firewall.migration_admitted = strv_free(c->firewall.migration_admitted);
        if (mignet_admitted_sources(c->firewall.migration_sources, c->peers, c->n_peers,
                                    &c->firewall.migration_admitted) < 0)
                return -ENOMEM;
        if (!console_tls_ciphers_usable(c->console.tls_min_version, c->console.tls_ciphers)) {
                it = config_item_find("console", "tls_ciphers");
                loc = item_location(c, it);
                diag(diags, CONFIG_DIAG_ERROR, loc->file, loc->line,
                     "[console] tls_ciphers: none of them is a TLS 1.3 cipher, and "
                     "tls_min_version = tlsv1.3 allows nothing else: no client could connect");
        }

        return 0;
}

static int load(const char *conf_dir, bool skip_secrets, bool keep_store_secrets,
                ConfigDiags *diags, Config **ret)
{
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *main_path = NULL, *dropin_dir = NULL;
        struct dirent **entries = NULL;
        size_t errors_before = diags->n_errors;
        int n, r;

        r = config_new(&c);
        if (r < 0)
                return r;
        ((ConfigPrivate *)c)->skip_secrets = skip_secrets;
        ((ConfigPrivate *)c)->keep_store_secrets = keep_store_secrets;

        if (asprintf(&main_path, "%s/hostwarden.conf", conf_dir) < 0 ||
            asprintf(&dropin_dir, "%s/hostwarden.conf.d", conf_dir) < 0)
                return -ENOMEM;

        r = parse_file(c, main_path, diags);
        if (r < 0)
                return r;

        n = scandir(dropin_dir, &entries, dropin_filter, alphasort);
        if (n < 0 && errno != ENOENT)
                diag(diags, CONFIG_DIAG_ERROR, dropin_dir, 0, "cannot read directory: %s",
                     strerror(errno));
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;

                if (r >= 0 && asprintf(&path, "%s/%s", dropin_dir, entries[i]->d_name) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = parse_file(c, path, diags);
                free(entries[i]);
        }
        free(entries);
        if (r < 0)
                return r;

        r = config_finish(c, diags);
        if (r < 0)
                return r;
        if (diags->n_errors > errors_before)
                return -EINVAL;

        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *conf_dir, ConfigDiags *diags, Config **ret)
{
        return load(conf_dir, false, false, diags, ret);
}

int config_load_without_secrets(const char *conf_dir, ConfigDiags *diags, Config **ret)
{
        return load(conf_dir, true, false, diags, ret);
}

int config_load_with_store_secrets(const char *conf_dir, ConfigDiags *diags, Config **ret)
{
        return load(conf_dir, true, true, diags, ret);
}
