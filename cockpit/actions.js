// SPDX-License-Identifier: LGPL-2.1-or-later
// The Actions view. Each button is one method of hostwardend's API (docs/cockpit.md lists
// them with their polkit actions); what it answers, a refusal included, goes to report().

import { MAINTENANCE, MAINTENANCE_PATH, callNode, callOn, client, describeError,
    migrationOptions } from "./api.js";
import { el, fillSelect, replaceRows } from "./format.js";

let report = () => {};
let checkSerial = 0;

const $ = id => document.getElementById(id);

function act(what, promise, done) {
    report(`${what}…`);
    return promise.then(result => {
        report(done ? done(result) : `${what}: done.`);
        return result;
    }).catch(error => {
        report(`${what}: ${describeError(error)}`, true);
        throw error;
    });
}

const MAX_BANDWIDTH = 1048576; // MiB/s, as hostwardend takes it

// null when the field is not a bandwidth hostwardend takes
function formOptions() {
    const text = $("migrate-bandwidth").value.trim();
    if (text !== "" && !(/^[0-9]+$/.test(text) && Number(text) <= MAX_BANDWIDTH))
        return null;
    return migrationOptions({ block: $("migrate-block").checked,
                              bandwidth: text === "" ? null : Number(text) });
}

// CheckMigration's findings come first; Migrate is enabled only for the checked choice
// and when no finding is an error.
function checkMigration() {
    const serial = ++checkSerial;
    const domain = $("migrate-domain").value;
    const dest = $("migrate-dest").value;
    const findings = $("migrate-findings");
    $("migrate-button").disabled = true;
    if (!domain || !dest) {
        findings.replaceChildren(el("li", { class: "hw-muted" },
                                    dest ? "No running domain." : "Choose a destination."));
        return;
    }
    const options = formOptions();
    if (!options) {
        findings.replaceChildren(el("li", { class: "hw-finding-error" },
                                    "Bandwidth: a whole number of MiB/s from 0 (no limit) " +
                                    `to ${MAX_BANDWIDTH}.`));
        return;
    }
    findings.replaceChildren(el("li", { class: "hw-muted" }, `Checking ${domain} for ${dest}…`));
    callNode("CheckMigration", "ssa{sv}", [domain, dest, options]).then(([list]) => {
        if (serial !== checkSerial)
            return;
        const errors = list.filter(f => f[0] === "error").length;
        findings.replaceChildren(...(list.length
            ? list.map(([severity, code, message]) =>
                el("li", { class: "hw-finding-" + severity, "data-code": code },
                   `${severity}: ${message} (${code})`))
            : [el("li", { class: "hw-finding-ok" },
                  `Nothing stands in the way of ${domain} to ${dest}.`)]));
        $("migrate-button").disabled = errors > 0 || formOptions() === null;
    }).catch(error => {
        if (serial === checkSerial)
            findings.replaceChildren(el("li", { class: "hw-finding-error" }, describeError(error)));
    });
}

export function updateChoices(self, nodes, domains) {
    const peers = nodes.filter(n => n.name !== self);
    const running = domains.filter(d => d.state === "running" || d.state === "paused");
    // checked again when the choice, or the state of what is chosen, changed
    const chosen = () => ["migrate-domain", "migrate-dest"].map(id => {
        const select = $(id);
        return select.selectedIndex < 0 ? "" : select.options[select.selectedIndex].text;
    }).join("\n");
    const before = chosen();
    fillSelect($("migrate-domain"), running.map(d => [d.name, `${d.name} (${d.state})`]));
    fillSelect($("migrate-dest"), peers.map(n => [n.name, `${n.name} (${n.state})`]));
    fillSelect($("peer-select"),
               peers.map(n => [n.name, `${n.name} (${n.state}, fence ${n.fence})`]));
    if (before !== chosen())
        checkMigration();
}

function fence(action) {
    const peer = $("peer-select").value;
    act(`Fence ${peer} ${action}`, callNode("Fence", "ss", [peer, action]),
        ([power]) => `Fence ${peer} ${action}: the agent says it is ${power}.`).catch(() => {});
}

// the operator's word that a peer is powered off, as `nova service-force-down`; hostwardend
// refuses it for a peer whose heartbeat it still sees (NodeUp)
function forceDown(down) {
    const peer = $("peer-select").value;
    act(down ? `Force ${peer} down` : `Take back ${peer}'s force-down`,
        callNode("ForceDown", "sb", [peer, down])).catch(() => {});
}

function evacuateFrom() {
    const peer = $("peer-select").value;
    act(`Evacuate ${peer}'s instances to this node`, callNode("EvacuateFrom", "sa{sv}", [peer, {}]),
        ([results]) => {
            $("evacuate-results").replaceChildren(...results.map(([uuid, result, detail]) =>
                el("li", { class: result === "rebuilt" ? "hw-finding-ok" : "hw-finding-error" },
                   `${uuid}: ${result} ${detail}`)));
            return `Evacuation of ${peer}: ${results.length} instance(s) handled.`;
        }).catch(() => {});
}

function setupMaintenance() {
    const proxy = client.proxy(MAINTENANCE, MAINTENANCE_PATH);
    const show = () => {
        // a daemon without the Maintenance interface: no such form
        $("maintenance-form").hidden = !proxy.valid;
        if (!proxy.valid)
            return;
        const blocked = (proxy.Blocked || []).map(([d, why]) => `${d}: ${why}`).join("; ");
        $("maintenance-state").textContent = `State: ${proxy.State}` +
            (proxy.State === "ready" ? " (no guest left running: safe to reboot)" : "") +
            (blocked ? `. Blocked: ${blocked}` : "");
    };
    proxy.addEventListener("changed", show);
    proxy.wait().then(show);
    const call = (method, type, args) => callOn(MAINTENANCE_PATH, MAINTENANCE, method, type, args);
    $("maintenance-plan-button").addEventListener("click", () =>
        act("Maintenance plan", call("Plan"), ([plan]) => {
            replaceRows($("maintenance-plan").tBodies[0], plan.map(cells =>
                el("tr", {}, cells.map(c => el("td", {}, c)))));
            return `Maintenance would act on ${plan.length} domain(s).`;
        }).catch(() => {}));
    $("maintenance-enter-button").addEventListener("click", () =>
        act("Enter maintenance", call("Enter", "a{sv}", [{}])).catch(() => {}));
    $("maintenance-cancel-button").addEventListener("click", () =>
        act("Cancel maintenance", call("Cancel", "b", [false])).catch(() => {}));
    $("maintenance-exit-button").addEventListener("click", () =>
        act("Exit maintenance", call("Exit", "b", [$("maintenance-return").checked]))
                .catch(() => {}));
}

export function startActions(reportFn, onMigration) {
    report = reportFn;
    for (const id of ["migrate-domain", "migrate-dest", "migrate-block", "migrate-bandwidth"])
        $(id).addEventListener("change", checkMigration);
    $("migrate-form").addEventListener("submit", ev => {
        ev.preventDefault();
        const domain = $("migrate-domain").value;
        const dest = $("migrate-dest").value;
        const options = formOptions();
        $("migrate-button").disabled = true;
        if (!options)
            return checkMigration();
        act(`Migrate ${domain} to ${dest}`,
            callNode("Migrate", "ssa{sv}", [domain, dest, options]),
            ([path]) => { onMigration(path); return `Migration of ${domain} to ${dest} queued.` })
                .catch(() => {}).finally(checkMigration);
    });
    $("disable-button").addEventListener("click", () => {
        const reason = $("disable-reason").value.trim();
        if (!reason) {
            report("Disable: give a reason (1 to 255 characters).", true);
            return;
        }
        act("Disable this node", callNode("Disable", "s", [reason])).catch(() => {});
    });
    $("enable-button").addEventListener("click", () =>
        act("Enable this node", callNode("Enable", "", [])).catch(() => {}));
    $("drain-button").addEventListener("click", () =>
        act("Drain this node", callNode("EvacuateLive", "sa{sv}", ["", {}]),
            ([paths]) => {
                paths.forEach(onMigration);
                return `Drain: ${paths.length} migration(s) queued.`;
            })
                .catch(() => {}));
    $("fence-status-button").addEventListener("click", () => fence("status"));
    $("fence-off-button").addEventListener("click", () => fence("off"));
    $("fence-on-button").addEventListener("click", () => fence("on"));
    $("force-down-button").addEventListener("click", () => forceDown(true));
    $("force-up-button").addEventListener("click", () => forceDown(false));
    $("evacuate-button").addEventListener("click", evacuateFrom);
    setupMaintenance();
}
