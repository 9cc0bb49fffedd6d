// fer-serve's page: a photo or the webcam in, boxes, emotions and a table out.
// Plain browser JavaScript, served by fer-serve itself: no build step, nothing from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const info = { colours: {}, labels: [] };
const camera = { running: false, stream: null };
// The photo canvas is at most this wide, so labels keep a readable size on large photos.
const PHOTO_WIDTH = 900;
// Webcam frames are sent at most this wide: plenty for faces, small to upload.
const FRAME_WIDTH = 640;

function setState(state) { document.body.dataset.state = state; }

function say(element, text, isError) {
  element.textContent = text;
  element.classList.toggle("error", Boolean(isError));
}

// Black or white, whichever reads better on a label's fill (WCAG relative luminance).
function ink(hex) {
  const lin = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const [r, g, b] = [1, 3, 5].map((i) => lin(parseInt(hex.slice(i, i + 2), 16)));
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) ? "#000000" : "#ffffff";
}

function labelOf(face) {
  if (face.too_small) return "too small";
  return `${face.emotion} ${Math.round(face.probabilities[face.emotion] * 100)}%`;
}

// Boxes and labels of a record over a canvas showing its image `scale` times its size.
function drawFaces(ctx, faces, scale, fps) {
  const font = Math.max(13, Math.round(ctx.canvas.width / 55));
  ctx.font = `600 ${font}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  for (const face of faces) {
    const [x1, y1, x2, y2] = face.box.map((v) => v * scale);
    const colour = face.emotion ? (info.colours[face.emotion] || "#ffffff") : "#ffffff";
    ctx.lineWidth = Math.max(2, Math.round(Math.min(x2 - x1, y2 - y1) / 40));
    ctx.strokeStyle = colour;
    ctx.setLineDash(face.too_small ? [4, 3] : []);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.setLineDash([]);
    const text = labelOf(face);
    const w = ctx.measureText(text).width + 8;
    const h = font + 6;
    const top = y1 - h >= 0 ? y1 - h : y2;  // above the box, or below it at the top edge
    ctx.fillStyle = colour;
    ctx.fillRect(x1, top, w, h);
    ctx.fillStyle = ink(colour);
    ctx.fillText(text, x1 + 4, top + 3);
  }
  if (fps) {
    const text = `${fps.toFixed(1)} fps`;
    ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
    ctx.fillRect(0, 0, ctx.measureText(text).width + 12, font + 10);
    ctx.fillStyle = "#ffffff";
    ctx.fillText(text, 6, 5);
  }
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.message || `${response.status} ${response.statusText}`;
  } catch (e) {
    return `${response.status} ${response.statusText}`;
  }
}

async function loadModels() {
  try {
    const response = await fetch("/v1/models");
    if (!response.ok) throw new Error(await errorText(response));
    const models = await response.json();
    info.colours = models.colours;
    info.labels = models.classifier.labels;
    const megabytes = (models.limits.max_bytes / 1e6).toFixed(0);
    say($("models"), `${models.detector.kind} ${models.detector.model || ""} + ` +
        `${models.classifier.model} (${info.labels.join(", ")}); photos up to ${megabytes} MB`);
    setState("ready");
  } catch (e) {
    say($("models"), `cannot reach the server: ${e.message}`, true);
    setState("error");
  }
}

// ---- photo mode ---------------------------------------------------------------------------

function fillTable(record) {
  const body = $("faces").querySelector("tbody");
  body.replaceChildren();
  record.faces.forEach((face, i) => {
    const row = document.createElement("tr");
    row.dataset.emotion = face.emotion || "";
    const cells = [
      String(i + 1),
      face.too_small ? "too small to read" : face.emotion,
      face.too_small ? "" : face.probabilities[face.emotion].toFixed(3),
      face.score === null ? "" : face.score.toFixed(3),
      face.box.map((v) => Math.round(v)).join(", "),
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    if (!face.too_small) {  // the emotion's colour, as on the boxes
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = info.colours[face.emotion] || "#ffffff";
      row.children[1].prepend(swatch);
    }
    body.appendChild(row);
  });
  $("faces").hidden = record.faces.length === 0;
}

function showPhoto(file, record) {
  const url = URL.createObjectURL(file);
  const image = new Image();
  image.onload = () => {
    const canvas = $("photo");
    const scale = Math.min(1, PHOTO_WIDTH / record.width);
    canvas.width = Math.round(record.width * scale);
    canvas.height = Math.round(record.height * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    drawFaces(ctx, record.faces, scale);
    canvas.dataset.faces = String(record.faces.length);
    URL.revokeObjectURL(url);
    setState("done");
  };
  image.onerror = () => {  // the server read it but this browser cannot show it (TIFF, say)
    URL.revokeObjectURL(url);
    setState("done");
  };
  image.src = url;
}

async function analysePhoto(file) {
  setState("busy");
  say($("photo-status"), `analysing ${file.name}\u2026`);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await fetch("/v1/analyze", { method: "POST", body: form });
    if (!response.ok) throw new Error(await errorText(response));
    const record = await response.json();
    const n = record.faces.length;
    say($("photo-status"), `${file.name}: ${n} face${n === 1 ? "" : "s"} found`);
    fillTable(record);
    showPhoto(file, record);
  } catch (e) {
    say($("photo-status"), e.message, true);
    setState("error");
  }
}

function setUpPhoto() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) analysePhoto(event.target.files[0]);
  });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) analysePhoto(event.dataTransfer.files[0]);
  });
}

// ---- webcam mode --------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One frame at a time: the next is sent when the answer to the last arrives, so the page runs at
// the rate the server keeps up with and never queues stale frames.
async function cameraLoop() {
  const video = $("video");
  const overlay = $("overlay");
  const grab = document.createElement("canvas");
  let last = performance.now();
  let fps = 0;
  while (camera.running) {
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) { await sleep(50); continue; }
    const scale = Math.min(1, FRAME_WIDTH / w);
    grab.width = Math.round(w * scale);
    grab.height = Math.round(h * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.85));
    let record;
    try {
      const response = await fetch("/v1/analyze", {
        method: "POST", headers: { "Content-Type": "image/jpeg" }, body: blob });
      if (!response.ok) throw new Error(await errorText(response));
      record = await response.json();
    } catch (e) {
      say($("camera-status"), e.message, true);
      await sleep(1000);
      continue;
    }
    if (!camera.running) break;
    const now = performance.now();
    const rate = 1000 / Math.max(now - last, 1);
    last = now;
    fps = fps ? 0.8 * fps + 0.2 * rate : rate;
    overlay.width = w;
    overlay.height = h;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    drawFaces(ctx, record.faces, w / record.width, fps);
    overlay.dataset.faces = String(record.faces.length);
    overlay.dataset.frames = String(Number(overlay.dataset.frames) + 1);
    const n = record.faces.length;
    say($("camera-status"), `${n} face${n === 1 ? "" : "s"}, ${fps.toFixed(1)} frames a second`);
  }
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say($("camera-status"), "this browser gives no camera here (it needs https or localhost)", true);
    return;
  }
  try {
    camera.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (e) {
    say($("camera-status"), `no camera: ${e.message}`, true);
    return;
  }
  const video = $("video");
  video.srcObject = camera.stream;
  await video.play();
  camera.running = true;
  $("camera-toggle").textContent = "Stop the webcam";
  say($("camera-status"), "sending frames\u2026");
  cameraLoop();
}

function stopCamera() {
  camera.running = false;
  if (camera.stream) camera.stream.getTracks().forEach((track) => track.stop());
  camera.stream = null;
  $("video").srcObject = null;
  const overlay = $("overlay");
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  $("camera-toggle").textContent = "Start the webcam";
}

function setMode(mode) {
  $("photo-mode").hidden = mode !== "photo";
  $("camera-mode").hidden = mode !== "camera";
  $("mode-photo").classList.toggle("active", mode === "photo");
  $("mode-camera").classList.toggle("active", mode === "camera");
  if (mode !== "camera" && camera.running) stopCamera();
}

function setUp() {
  setUpPhoto();
  $("mode-photo").addEventListener("click", () => setMode("photo"));
  $("mode-camera").addEventListener("click", () => setMode("camera"));
  $("camera-toggle").addEventListener("click", () => (camera.running ? stopCamera() : startCamera()));
  loadModels();
}

setUp();
