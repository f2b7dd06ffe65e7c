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

// A row is made once per migration and then updated in place: rebuilt twice a second, its
// buttons would be replaced between a click's press and release, and the click lost.
function makeRow(path, entry) {
    const cells = {
        domain: el("th", { scope: "row" }),
        destination: el("td"),
        mode: el("td"),
        state: el("td"),
        bar: el("progress", { max: 100, value: 0, class: "hw-progress" }),
        percent: document.createTextNode(""),
        speed: el("td", { class: "hw-num" }),
        downtime: el("td", { class: "hw-num" }),
        abort: el("button", {
            type: "button", class: "hw-abort",
            onclick: ev => { ev.stopPropagation(); control(path, "Abort") },
        }, "Abort"),
        force: el("button", {
            type: "button", class: "hw-force-complete",
            onclick: ev => { ev.stopPropagation(); control(path, "ForceComplete") },
        }, "Force complete"),
    };
    entry.cells = cells;
    const choose = () => { selected = path; scheduleRender() };
    entry.row = el("tr", { "data-path": path, onclick: choose },
                   cells.domain, cells.destination, cells.mode, cells.state,
                   el("td", {}, cells.bar, cells.percent), cells.speed, cells.downtime,
                   el("td", {}, cells.abort, cells.force));
}

function updateRow(path, entry) {
    if (!entry.row)
        makeRow(path, entry);
    const p = entry.proxy;
    const c = entry.cells;
    const running = p.State === "running";
    entry.row.dataset.domain = p.DomainName;
    entry.row.dataset.state = p.State;
    entry.row.classList.toggle("hw-selected", path === selected);
    c.domain.textContent = p.DomainName || p.Domain;
    c.destination.textContent = p.Destination || "(choosing)";
    c.mode.textContent = p.Mode;
    c.state.textContent = p.State;
    c.state.className = "hw-state-" + p.State;
    c.state.title = p.Error || "";
    c.bar.value = p.Progress || 0;
    c.percent.textContent = ` ${p.Progress || 0} %`;
    c.speed.textContent = running ? mib(entry.speed) + "/s" : "";
    c.downtime.textContent = p.State === "completed" ? `${p.Downtime} ms`
        : p.MaxDowntime ? `max ${p.MaxDowntime} ms` : "";
    c.abort.disabled = !ABORTABLE.includes(p.State) || !!p.PostCopy;
    c.force.disabled = !running;
    return entry.row;
}

function render() {
    renderQueued = false;
    const entries = [...tracked.entries()].filter(([, e]) => e.proxy.valid)
            .sort(([, a], [, b]) => (b.proxy.Created || 0) - (a.proxy.Created || 0));
    const rows = entries.map(([path, entry]) => updateRow(path, entry));
    const tbody = document.querySelector("#migrations-table tbody");
    if (rows.length === 0)
        replaceRows(tbody, [el("tr", {}, el("td", { colspan: 8, class: "hw-muted" },
                                            "No migration from this node in the last hour."))]);
    else if (rows.length !== tbody.children.length || rows.some((r, i) => tbody.children[i] !== r))
        replaceRows(tbody, rows);
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
        // also while the frame is hidden, unlike requestAnimationFrame
        window.setTimeout(render, 100);
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
                     (path, iface, signal, [, object]) => {
                         tracked.delete(object);
                         scheduleRender();
                     });
    const [list] = await callNode("ListMigrations", "", []);
    list.forEach(m => track(m[6]));
    if (!selected && list.length)
        selected = list[0][6];
    scheduleRender();
}
