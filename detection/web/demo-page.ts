/**
 * The demo page written next to each saved model (`index.html`): pick or drop an image, see the boxes and scores.
 * It loads the browser bundle from BROWSER_ASSETS (served by `train-detector serve`) and the model from its own
 * folder, and exposes `window.dataParamsDemo` (the loaded detector and a detect-from-URL helper) for scripts and tests.
 */
import type { SSDSpec } from '../model/build.js';

/** Where the local server serves the browser bundle and the wasm binaries. */
export const BROWSER_ASSETS = '/_data-params/';
/** The bundle of the browser entry (ESM) inside BROWSER_ASSETS. */
export const BROWSER_BUNDLE = 'data-params.js';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function demoPageHtml(spec: SSDSpec): string {
  const what = `${spec.classNames.join(', ')} detector, ${spec.backbone.type} backbone, input ${spec.inputSize.width}x${spec.inputSize.height}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Detector demo: ${esc(spec.classNames.join(', '))}</title>
<style>
body { font-family: 'DejaVu Sans', Arial, Helvetica, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
#drop { border: 2px dashed #999; padding: 1.2em; text-align: center; margin: 1em 0; }
#drop.over { border-color: #06c; background: #eef6ff; }
canvas { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; margin-top: 1em; }
td, th { padding: 0.15em 0.8em; text-align: right; border-bottom: 1px solid #eee; }
#status { color: #555; }
</style>
</head>
<body>
<h1>Detector demo</h1>
<p>${esc(what)}. Runs in this page with TensorFlow.js; nothing leaves the browser.
<a id="report" href="../curriculum/index.html" hidden>Curriculum report of the run</a></p>
<p>
<label>Backend <select id="backend"><option>webgl</option><option>wasm</option><option>webgpu</option><option>cpu</option></select></label>
<label>Minimum score <input id="minScore" type="number" min="0" max="1" step="0.05" value="0.3"></label>
</p>
<div id="drop">Drop an image here, or <input id="file" type="file" accept="image/*"></div>
<p id="status">loading the model…</p>
<canvas id="view" width="0" height="0"></canvas>
<table id="dets"></table>
<script type="module">
import { loadDetector } from '${BROWSER_ASSETS}${BROWSER_BUNDLE}';
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const backend = params.get('backend') || 'webgl';
$('backend').value = backend;
$('backend').onchange = () => { params.set('backend', $('backend').value); location.search = params.toString(); };
fetch('../curriculum/index.html', { method: 'HEAD' }).then((r) => { if (r.ok) $('report').hidden = false; }, () => {});
let last = null;
const ready = loadDetector('model.json', { backend, wasmPaths: new URL('${BROWSER_ASSETS}', location.href).href });
async function loadImage(src) {
  const img = new Image();
  img.src = src;
  await img.decode();
  return img;
}
async function show(img) {
  const detector = await ready;
  const t0 = performance.now();
  const dets = await detector.detect(img);
  const ms = performance.now() - t0;
  last = { img, dets };
  draw();
  $('status').textContent = dets.length + ' detections above the model\\'s threshold in ' + ms.toFixed(1) + ' ms (' + backend + ')';
  return dets;
}
function draw() {
  if (!last) return;
  const { img, dets } = last;
  const minScore = Number($('minScore').value);
  const c = $('view');
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  ctx.lineWidth = 2;
  ctx.font = '12px sans-serif';
  const rows = ['<tr><th>class</th><th>score</th><th>x1</th><th>y1</th><th>x2</th><th>y2</th></tr>'];
  for (const d of dets.filter((d) => d.score >= minScore)) {
    const [x1, y1, x2, y2] = d.box;
    ctx.strokeStyle = ctx.fillStyle = '#00e060';
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillText(d.className + ' ' + d.score.toFixed(2), x1 + 2, Math.max(12, y1 - 3));
    rows.push('<tr><td>' + d.className + '</td><td>' + d.score.toFixed(3) + '</td>' + d.box.map((v) => '<td>' + v.toFixed(1) + '</td>').join('') + '</tr>');
  }
  $('dets').innerHTML = rows.join('');
}
$('minScore').oninput = draw;
$('file').onchange = async () => { const f = $('file').files[0]; if (f) await show(await loadImage(URL.createObjectURL(f))); };
const drop = $('drop');
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = async (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const f = e.dataTransfer.files[0];
  if (f) await show(await loadImage(URL.createObjectURL(f)));
};
window.dataParamsDemo = {
  ready,
  backend,
  /** Detections of the image at \`src\` (any URL the page can load), as shown. */
  detectUrl: async (src) => show(await loadImage(src)),
};
ready.then(
  (d) => { $('status').textContent = 'model loaded (' + d.classNames.join(', ') + ', ' + backend + '): pick or drop an image'; },
  (err) => { $('status').textContent = 'could not load the model: ' + err.message; },
);
</script>
</body>
</html>
`;
}
