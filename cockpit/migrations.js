// SPDX-License-Identifier: LGPL-2.1-or-later
// The Migrations view: every Migration object of this node, followed through its
// PropertiesChanged (a cockpit proxy per object), with progress, speed, downtime, Abort and
// ForceComplete, and the remaining memory of the selected one over time.

import { MIGRATION, NODE, PATH, callNode, callOn, client, describeError } from "./api.js";
import { drawRemaining } from "./chart.js";
import { el, mib, replaceRows } from "./format.js";

const ENDED = ["completed", "failed", "aborted"];
const ABORTABLE = ["queued", "preparing", "running"];
const SAMPLES_KEPT = 1200; // 10 minutes at hostwardend's two announcements a second

const tracked = new Map(); // path -> { proxy, samples, last, speed }
let selected = null;
let report = () => {};
let onEnded = () => {};
let renderQueued = false;

function sample(entry) {
    const p = entry.proxy;
    const now = Date.now();
    if (p.MemoryTotal > 0 && !ENDED.includes(p.State)) {
        entry.samples.push([now, p.MemoryRemaining]);
        if (entry.samples.length > SAMPLES_KEPT)
            entry.samples.shift();
    }
    // hostwardend publishes no speed: the bytes sent between two announcements
    const sent = (p.MemoryProcessed || 0) + (p.DiskProcessed || 0);
    if (entry.last && now > entry.last[0] && sent >= entry.last[1])
        entry.speed = (sent - entry.last[1]) * 1000 / (now - entry.last[0]);
    entry.last = [now, sent];
    if (ENDED.includes(p.State) && !entry.ended) {
        entry.ended = true;
        onEnded();
    }
}

function track(path) {
    if (tracked.has(path))
        return;
    const entry = { proxy: client.proxy(MIGRATION, path), samples: [], last: null, speed: 0 };
    tracked.set(path, entry);
    entry.proxy.addEventListener("changed", () => { sample(entry); scheduleRender() });
    entry.proxy.wait().then(() => { sample(entry); scheduleRender() });
}

function control(path, method) {
    callOn(path, MIGRATION, method)
        .then(() => report(`${method} of ${tracked.get(path).proxy.DomainName}: done.`))
        .catch(error => report(`${method}: ${describeError(error)}`, true));
}

function row(path, entry) {
    const p = entry.proxy;
    const running = p.State === "running";
    const downtime = p.State === "completed" ? `${p.Downtime} ms`
        : p.MaxDowntime ? `max ${p.MaxDowntime} ms` : "";
    return el("tr", {
        "data-path": path, "data-domain": p.DomainName, "data-state": p.State,
        class: path === selected ? "hw-selected" : null,
        onclick: () => { selected = path; scheduleRender() },
    },
    el("th", { scope: "row" }, p.DomainName || p.Domain),
    el("td", {}, p.Destination || "(choosing)"),
    el("td", {}, p.Mode),
    el("td", { class: "hw-state-" + p.State, title: p.Error || null }, p.State),
    el("td", {}, el("progress", { max: 100, value: p.Progress || 0, class: "hw-progress" }),
       ` ${p.Progress || 0} %`),
    el("td", { class: "hw-num" }, running ? mib(entry.speed) + "/s" : ""),
    el("td", { class: "hw-num" }, downtime),
    el("td", {},
       el("button", {
           type: "button", class: "hw-abort", disabled: !ABORTABLE.includes(p.State) || p.PostCopy,
           onclick: ev => { ev.stopPropagation(); control(path, "Abort") },
       }, "Abort"),
       el("button", {
           type: "button", class: "hw-force-complete", disabled: !running,
           onclick: ev => { ev.stopPropagation(); control(path, "ForceComplete") },
       }, "Force complete")));
}

function render() {
    renderQueued = false;
    const entries = [...tracked.entries()].filter(([, e]) => e.proxy.valid)
            .sort(([, a], [, b]) => (b.proxy.Created || 0) - (a.proxy.Created || 0));
    replaceRows(document.querySelector("#migrations-table tbody"),
                entries.map(([path, entry]) => row(path, entry)));
    const detail = document.getElementById("migration-detail");
    const entry = tracked.get(selected);
    detail.hidden = !entry;
    if (entry) {
        document.getElementById("chart-title").textContent =
            `Remaining memory of ${entry.proxy.DomainName} to ${entry.proxy.Destination}`;
        drawRemaining(document.getElementById("remaining-chart"), entry.samples);
        document.getElementById("migration-error").textContent = entry.proxy.Error || "";
    }
}

function scheduleRender() {
    if (!renderQueued) {
        renderQueued = true;
        window.setTimeout(render, 100); // also while the frame is hidden, unlike requestAnimationFrame
    }
}

export function select(path) {
    selected = path;
    track(path);
    scheduleRender();
}

export async function startMigrations(reportFn, onEndedFn) {
    report = reportFn;
    onEnded = onEndedFn;
    client.subscribe({ path: PATH, interface: NODE, member: "MigrationNew" },
                     (path, iface, signal, [, object]) => track(object));
    client.subscribe({ path: PATH, interface: NODE, member: "MigrationRemoved" },
                     (path, iface, signal, [, object]) => { tracked.delete(object); scheduleRender() });
    const [list] = await callNode("ListMigrations", "", []);
    list.forEach(m => track(m[6]));
    if (!selected && list.length)
        selected = list[0][6];
    scheduleRender();
}
