// The drawing page: pointer events (mouse, pen, touch) on a canvas, POST /api/predict.
"use strict";

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const els = Object.fromEntries(
  ["predict", "clear", "file", "prediction", "confidence", "bars", "seen", "error", "model-info"]
    .map((id) => [id, document.getElementById(id)]));

const BRUSH = 18;            // stroke width in canvas pixels (the canvas is 280 x 280)
let drawing = null;          // the pointerId of the stroke in progress
let last = null;             // its last point
let inked = false;           // anything drawn since the last Clear

function clearCanvas() {
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  inked = false;
}

function resetResult() {
  els.prediction.textContent = "?";
  els.confidence.textContent = "";
  els.bars.replaceChildren();
  els.seen.hidden = true;
  showError(null);
}

function point(ev) {
  const r = canvas.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * canvas.width / r.width,
           y: (ev.clientY - r.top) * canvas.height / r.height };
}

function dot(p) {
  ctx.beginPath();
  ctx.arc(p.x, p.y, BRUSH / 2, 0, 2 * Math.PI);
  ctx.fill();
}

function segment(a, b) {
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
}

canvas.addEventListener("pointerdown", (ev) => {
  if (drawing !== null || (ev.pointerType === "mouse" && ev.button !== 0)) return;
  ev.preventDefault();
  drawing = ev.pointerId;
  canvas.setPointerCapture(ev.pointerId);
  ctx.fillStyle = ctx.strokeStyle = "black";
  ctx.lineWidth = BRUSH;
  ctx.lineCap = ctx.lineJoin = "round";
  last = point(ev);
  dot(last);
  inked = true;
});

canvas.addEventListener("pointermove", (ev) => {
  if (ev.pointerId !== drawing) return;
  ev.preventDefault();
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of (events.length ? events : [ev])) {
    const p = point(e);
    segment(last, p);
    last = p;
  }
});

function endStroke(ev) {
  if (ev.pointerId !== drawing) return;
  drawing = null;
  last = null;
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function showError(message) {
  els.error.hidden = !message;
  els.error.textContent = message || "";
}

function showResult(r) {
  showError(null);
  els.prediction.textContent = r.prediction;
  els.confidence.textContent = (100 * r.confidence).toFixed(1) + "%";
  els.bars.replaceChildren(...r.top.map((c, i) => {
    const row = document.createElement("div");
    row.className = "bar-row" + (i === 0 ? " best" : "");
    row.dataset.label = c.label;
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = c.label;
    const track = document.createElement("div");
    track.className = "bar-track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (100 * c.probability).toFixed(1) + "%";
    track.append(bar);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = (100 * c.probability).toFixed(1) + "%";
    row.append(label, track, value);
    return row;
  }));
  els.seen.src = r.image28;
  els.seen.hidden = false;
}

async function send(request) {
  els.predict.disabled = true;
  els.prediction.textContent = "…";
  els.confidence.textContent = "";
  try {
    const res = await fetch(request.url, request.init);
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      resetResult();
      showError((body && body.detail) || `the server answered ${res.status}`);
      return;
    }
    showResult(body);
  } catch (e) {
    resetResult();
    showError("could not reach the server: " + e.message);
  } finally {
    els.predict.disabled = false;
  }
}

function predict() {
  if (!inked) {
    resetResult();
    showError("Draw a character first.");
    return;
  }
  send({ url: "/api/predict", init: {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ image: canvas.toDataURL("image/png"), k: 5 }),
  }});
}

els.predict.addEventListener("click", predict);
els.clear.addEventListener("click", () => { clearCanvas(); resetResult(); });
els.file.addEventListener("change", () => {
  const f = els.file.files[0];
  if (!f) return;
  const form = new FormData();
  form.append("file", f);
  form.append("k", "5");
  send({ url: "/api/predict/upload", init: { method: "POST", body: form } });
  els.file.value = "";
});
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement) return;
  if (ev.key === "Enter") { ev.preventDefault(); predict(); }
  if (ev.key === "Escape") { clearCanvas(); resetResult(); }
});

fetch("/api/model").then((r) => r.json()).then((m) => {
  els["model-info"].textContent =
    `${m.num_classes} classes: ${m.classes.join(" ")}` +
    (m.parameters ? ` — ${m.parameters.toLocaleString()} parameters` : "");
}).catch(() => { els["model-info"].textContent = "model information unavailable"; });

clearCanvas();
