// SPDX-License-Identifier: LGPL-2.1-or-later
// Small DOM and formatting helpers shared by the views.

export function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
        if (value === undefined || value === null || value === false)
            continue;
        if (key.startsWith("on"))
            node.addEventListener(key.substring(2), value);
        else if (key === "class")
            node.className = value;
        else
            node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
        if (child !== null && child !== undefined)
            node.append(child instanceof Node ? child : String(child));
    }
    return node;
}

export function replaceRows(tbody, rows) {
    tbody.replaceChildren(...rows);
}

// t: microseconds since the epoch, 0 = not set
export function ago(usec) {
    if (!usec)
        return "";
    const s = Math.max(0, Math.round((Date.now() - usec / 1000) / 1000));
    if (s < 90)
        return s + " s ago";
    if (s < 5400)
        return Math.round(s / 60) + " min ago";
    if (s < 172800)
        return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
}

export function mib(bytes) {
    return (bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0) + " MiB";
}

// the selected value survives a refill, unless it is gone
export function fillSelect(select, options) {
    const before = select.value;
    select.replaceChildren(...options.map(([value, label]) => el("option", { value }, label)));
    if (options.some(([value]) => value === before))
        select.value = before;
}
