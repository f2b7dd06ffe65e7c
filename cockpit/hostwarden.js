// SPDX-License-Identifier: LGPL-2.1-or-later
// The page's entry: tabs, this node's properties, and the refresh of the listings.

import { NODE, PATH, client, describeError } from "./api.js";
import { startActions, updateChoices } from "./actions.js";
import { select, startMigrations } from "./migrations.js";
import { el } from "./format.js";
import { readDomains, readNodes, renderDomains, renderNodes, renderReadError } from "./nodes.js";

// ListNodes and ListInstances are answered from a listing at most 1 s old; ListDomains
// asks libvirt in a worker thread (capped per caller), so it is read less often.
const NODES_EVERY_MS = 2000;
const DOMAINS_EVERY_MS = 5000;

const node = client.proxy(NODE, PATH);
let nodes = [];
let domains = [];

function report(text, failed) {
    const status = document.getElementById("action-status");
    status.hidden = false;
    status.textContent = text;
    status.classList.toggle("hw-alert-error", !!failed);
}

function showView(name) {
    for (const tab of document.querySelectorAll("[role=tab]")) {
        const on = tab.dataset.view === name;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        document.getElementById("view-" + tab.dataset.view).hidden = !on;
    }
}

function renderSelf() {
    if (!node.valid)
        return;
    document.getElementById("node-title").textContent = `Hostwarden on ${node.Name}`;
    const parts = [`${node.State}${node.DisabledReason ? ` (${node.DisabledReason})` : ""}`,
        `firewall ${node.FirewallState}`, `store ${node.Store} ${node.StoreState || ""}`.trim()];
    if (node.Recovery)
        parts.push(`automatic recovery: ${node.Recovery}`);
    if (node.ForcedDownBy)
        parts.push(`forced down by ${node.ForcedDownBy}`);
    document.getElementById("node-summary").textContent = parts.join(", ");
    // what the last load of the configuration ignored, with the closest known name: a
    // misspelt key is seen where the operator looks, not only in the journal
    document.getElementById("config-warnings").replaceChildren(
        ...(node.ConfigWarnings || []).map(w => el("li", { class: "hw-warning" },
                                                     "Configuration: " + w)));
}

async function refreshNodes() {
    try {
        nodes = await readNodes();
        renderNodes(nodes, node.Name, node.Recovery && node.Recovery !== "off");
    } catch (error) {
        renderReadError(error);
    }
    updateChoices(node.Name, nodes, domains);
}

async function refreshDomains() {
    try {
        domains = await readDomains();
        renderDomains(domains, node.Name);
    } catch (error) {
        document.getElementById("domains-caption").textContent =
            "The domains of this node cannot be listed: " + describeError(error);
    }
    updateChoices(node.Name, nodes, domains);
}

function start() {
    for (const tab of document.querySelectorAll("[role=tab]"))
        tab.addEventListener("click", () => showView(tab.dataset.view));
    node.addEventListener("changed", renderSelf);
    client.subscribe({ path: PATH, interface: NODE, member: "NodeChanged" }, refreshNodes);
    startActions(report, path => { select(path); showView("migrations") });
    node.wait().then(() => {
        renderSelf();
        refreshNodes();
        refreshDomains();
        startMigrations(report, refreshDomains).catch(error =>
            report("The migrations cannot be listed: " + describeError(error), true));
    });
    window.setInterval(refreshNodes, NODES_EVERY_MS);
    window.setInterval(refreshDomains, DOMAINS_EVERY_MS);
}

start();
