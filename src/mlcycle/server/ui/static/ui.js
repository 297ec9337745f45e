// mlcycle UI: the charts. Plotly comes from /static/plotly.min.js (the installed plotly package).
"use strict";

const LAYOUT = {
  margin: {l: 50, r: 10, t: 30, b: 40},
  height: 260,
  xaxis: {title: {text: "step"}},
  legend: {orientation: "h"},
};
const CONFIG = {responsive: true, displaylogo: false};
const POLL_MS = 2000;

function chartFor(container, key) {
  const id = "chart-" + key.replace(/[^A-Za-z0-9_-]/g, "_");
  let figure = document.getElementById(id);
  if (!figure) {
    figure = document.createElement("figure");
    figure.id = id;
    figure.className = "chart";
    figure.setAttribute("role", "img");
    figure.setAttribute("aria-label", key + " by step");
    figure.dataset.metric = key;
    container.appendChild(figure);
  }
  return figure;
}

// The run page: one chart per metric, redrawn every POLL_MS while the run is running.
async function runCharts(container) {
  const error = document.getElementById("charts-error");
  const status = document.getElementById("run-status");
  let running = container.dataset.status === "running";
  do {
    try {
      const response = await fetch(container.dataset.url, {credentials: "same-origin"});
      if (!response.ok) throw new Error("the server answered " + response.status);
      const data = await response.json();
      for (const [key, h] of Object.entries(data.metrics)) {
        const figure = chartFor(container, key);
        Plotly.react(figure, [{x: h.steps, y: h.values, mode: "lines+markers", name: key}],
                     {...LAYOUT, title: {text: key}}, CONFIG);
        figure.dataset.points = String(h.steps.length);
      }
      if (status && status.textContent !== data.status) {
        status.textContent = data.status;
        status.className = "status " + data.status;
      }
      running = data.status === "running";
      error.hidden = true;
    } catch (exc) {
      error.textContent = "Could not load the metrics: " + exc.message;
      error.hidden = false;
    }
    if (running) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  } while (running);
  container.dataset.status = "done";
}

// The compare page: metric overlays by step, parallel coordinates, the "only differing" toggle.
function compareCharts(data) {
  const container = document.getElementById("compare-charts");
  for (const [key, chart] of Object.entries(data.charts)) {
    const traces = chart.series.map((values, i) => (
      {x: chart.steps, y: values, name: data.names[i], mode: "lines+markers", connectgaps: true}));
    const figure = chartFor(container, key);
    Plotly.newPlot(figure, traces, {...LAYOUT, title: {text: key}}, CONFIG);
    figure.dataset.points = String(chart.steps.length);
  }
  const parallel = document.getElementById("parallel");
  if (parallel) {
    const dimensions = data.axes.map((axis) => ({label: axis.label, values: axis.values}));
    const color = data.names.map((_, i) => i);
    Plotly.newPlot(parallel, [{type: "parcoords", dimensions: dimensions,
                               line: {color: color, colorscale: "Viridis"}}],
                   {margin: {l: 60, r: 60, t: 40, b: 20}, height: 320}, CONFIG);
    parallel.dataset.lines = String(data.names.length);
  }
  const onlyDiff = document.getElementById("only-diff");
  if (onlyDiff) {
    onlyDiff.addEventListener("change", () => {
      for (const row of document.querySelectorAll("#params-table tr.same")) {
        row.hidden = onlyDiff.checked;
      }
    });
  }
}

// A dataset version: one bar chart per column from its stored profile.
function profileCharts(charts) {
  const container = document.getElementById("profile-charts");
  for (const chart of charts) {
    const figure = chartFor(container, chart.name);
    figure.setAttribute("aria-label", "distribution of " + chart.name);
    const bar = {type: "bar", x: chart.x, y: chart.y, name: chart.name};
    if (chart.width) bar.width = chart.width;
    Plotly.newPlot(figure, [bar], {...LAYOUT, title: {text: chart.name},
                                   xaxis: {title: {text: ""}}, bargap: 0.05}, CONFIG);
    figure.dataset.points = String(chart.x.length);
  }
}

// A monitor: one chart per metric over time, a line per feature or segment.
function monitorCharts(charts) {
  const container = document.getElementById("monitor-charts");
  for (const chart of charts) {
    const figure = chartFor(container, chart.title);
    figure.setAttribute("aria-label", chart.title + " over time");
    const traces = chart.lines.map((line) => (
      {x: line.x, y: line.y, name: line.name, mode: "lines+markers", connectgaps: false}));
    Plotly.newPlot(figure, traces, {...LAYOUT, title: {text: chart.title},
                                    xaxis: {type: "date"}}, CONFIG);
    figure.dataset.lines = String(chart.lines.length);
    figure.dataset.points = String(Math.max(...chart.lines.map((line) => line.x.length)));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const charts = document.getElementById("charts");
  if (charts) runCharts(charts);
  const compareData = document.getElementById("compare-data");
  if (compareData) compareCharts(JSON.parse(compareData.textContent));
  const monitorData = document.getElementById("monitor-data");
  if (monitorData) monitorCharts(JSON.parse(monitorData.textContent));
  const profileData = document.getElementById("profile-data");
  if (profileData) profileCharts(JSON.parse(profileData.textContent));
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
