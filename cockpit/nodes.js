// SPDX-License-Identifier: LGPL-2.1-or-later
// The Nodes view: this node, the cluster's nodes with what to do next (as `hostwardenctl
// overview` says it), and this node's domains with their owner.

import { callNode, describeError } from "./api.js";
import { ago, el, replaceRows } from "./format.js";

// What an operator should do about a node, as ctl/overview.c's node_advice() says it:
// [short note for the table, sentence for the list of things to do (or null)].
export function nodeAdvice(node, owned, recovering) {
    const down = node.state === "down";
    const forced = node.state === "forced-down";
    const fenced = node.fence === "off" || forced;

    if (recovering && (down || forced) && (owned > 0 || !fenced))
        return [fenced ? "recovery rebuilds its HA instances" : "recovery fences it", null];
    if (down && !fenced)
        return ["not fenced",
            `${node.name} is down and not fenced: fence it (power off), or force it down if ` +
            "you know it is off; then evacuate it."];
    if ((down || forced) && owned > 0)
        return ["to evacuate",
            `${node.name} is ${forced ? "forced down" : "fenced"} with ${owned} instance(s): ` +
            "evacuate it from the node that should take them."];
    if (down || forced)
        return ["nothing to evacuate", null];
    if (node.state === "unknown")
        return ["no heartbeat seen yet", null];
    return ["", null];
}

// ListNodes' detail is "disabled: REASON; heartbeat N, generation M" for a disabled node
function disabledReason(detail) {
    if (!detail.startsWith("disabled: "))
        return "";
    const reason = detail.substring(10);
    const end = reason.lastIndexOf("; heartbeat ");
    return end >= 0 ? reason.substring(0, end) : reason;
}

export async function readNodes() {
    const [nodes] = await callNode("ListNodes", "", []);
    const [instances] = await callNode("ListInstances", "", []);
    return nodes.map(([name, address, state, fence, detail, since]) => ({
        name, address, state, fence, detail, since,
        owned: instances.filter(i => i[2] === name).length,
    }));
}

export function renderNodes(nodes, self, recovering) {
    const advice = [];
    const counts = { up: 0, disabled: 0, down: 0 };
    const rows = nodes.map(node => {
        const [note, action] = nodeAdvice(node, node.owned, recovering);
        if (action)
            advice.push(el("li", { class: "hw-warning" }, action));
        if (node.state === "forced-down")
            counts.down++;
        else if (node.state in counts)
            counts[node.state]++;
        const why = note || disabledReason(node.detail);
        return el("tr", { "data-node": node.name, class: node.name === self ? "hw-self" : null },
                  el("th", { scope: "row" }, node.name),
                  el("td", {}, node.address),
                  el("td", { class: "hw-state-" + node.state }, node.state),
                  el("td", { class: node.fence === "off" ? "hw-state-down" : null }, node.fence),
                  el("td", { class: "hw-num" }, node.owned),
                  el("td", {}, node.state === "up" ? "" : ago(node.since)),
                  el("td", {}, [why, node.name === self ? (why ? "; " : "") + "this node" : ""]
                          .join("")));
    });
    replaceRows(document.querySelector("#nodes-table tbody"), rows);
    document.getElementById("cluster-summary").textContent =
        `${nodes.length} node(s): ${counts.up} up, ${counts.disabled} disabled, ` +
        `${counts.down} down; ${nodes.reduce((n, x) => n + x.owned, 0)} instance(s).` +
        (advice.length ? " Needs an operator:" : "");
    document.getElementById("cluster-advice").replaceChildren(...advice);
}

export async function readDomains() {
    const [domains] = await callNode("ListDomains", "", []);
    return domains.map(([uuid, name, state, owner]) => ({ uuid, name, state, owner }));
}

export function renderDomains(domains, self) {
    const rows = domains.map(d => el("tr", { "data-domain": d.name },
                                     el("th", { scope: "row" }, d.name),
                                     el("td", {}, d.state),
                                     el("td", { class: d.owner && d.owner !== self
                                         ? "hw-state-down" : null },
                                        d.owner || "no instance record yet"),
                                     el("td", { class: "hw-muted" }, d.uuid)));
    replaceRows(document.querySelector("#domains-table tbody"), rows.length ? rows
        : [el("tr", {}, el("td", { colspan: 4, class: "hw-muted" },
                           `No domain is defined on ${self}.`))]);
    document.getElementById("domains-caption").textContent = `Domains of ${self}`;
}

export function renderReadError(error) {
    document.getElementById("cluster-summary").textContent =
        "hostwardend does not answer: " + describeError(error);
}
