// SPDX-License-Identifier: LGPL-2.1-or-later
// The remaining memory of a migration over time, drawn as SVG by hand: one line, two axes,
// no library (docs/cockpit.md).

import { mib } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 640, H = 200, LEFT = 70, BOTTOM = 24, TOP = 10, RIGHT = 10;
const END_LABEL = { class: "hw-chart-label", "text-anchor": "end" };

function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs))
        node.setAttribute(key, value);
    if (text !== undefined)
        node.textContent = text;
    return node;
}

// samples: [[milliseconds since the epoch, remaining bytes], ...], oldest first
export function drawRemaining(chart, samples) {
    const parts = [
        svg("line", { x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM, class: "hw-axis" }),
        svg("line", { x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM, class: "hw-axis" }),
    ];
    if (samples.length === 0) {
        parts.push(svg("text", { x: LEFT + 10, y: H / 2, class: "hw-chart-label" },
                       "no memory statistics yet"));
        chart.replaceChildren(...parts);
        return;
    }
    const t0 = samples[0][0];
    const span = Math.max(1000, samples[samples.length - 1][0] - t0);
    const top = Math.max(1048576, ...samples.map(s => s[1]));
    const x = t => LEFT + (W - LEFT - RIGHT) * (t - t0) / span;
    const y = v => TOP + (H - TOP - BOTTOM) * (1 - v / top);
    const points = samples.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    parts.push(svg("polyline", { points, class: "hw-line", "data-samples": samples.length }),
               svg("text", { x: LEFT - 6, y: TOP + 10, ...END_LABEL },
                   mib(top)),
               svg("text", { x: LEFT - 6, y: H - BOTTOM, ...END_LABEL },
                   "0"),
               svg("text", { x: W - RIGHT, y: H - 6, ...END_LABEL },
                   `${(span / 1000).toFixed(0)} s`),
               svg("text", { x: LEFT, y: H - 6, class: "hw-chart-label" }, "0 s"));
    chart.replaceChildren(...parts);
}
