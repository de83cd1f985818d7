// The page's HTML (app.js is the bundle of main.ts; the styles are those of the superposition heatmap
// of the eval report, plus the fade-in of the newest latent step).
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Latent-SFT: latent reasoning in the browser</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
  textarea { width: 100%; font: inherit; }
  #status { color: #555; margin: .5rem 0; }
  #steps { overflow-x: auto; min-height: 2rem; }
  #answer { font-size: 1.15rem; white-space: pre-wrap; border-left: 4px solid #D55E00; padding-left: .6rem; min-height: 1.5rem; }
  svg.superposition text { font: 11px ui-monospace, monospace; }
  svg.superposition text.title { font: bold 13px system-ui, sans-serif; }
  svg.superposition text.tick { fill: #666; }
  svg.superposition g.fresh { animation: fresh .45s ease-out; }
  @keyframes fresh { from { opacity: 0; } to { opacity: 1; } }
</style>
</head>
<body>
<h1>Latent reasoning in the browser</h1>
<p>Each latent step feeds the model a superposition of its top-k tokens instead of one token; the columns below show them as they are computed (shade = probability), then the model writes its answer. Everything runs locally with onnxruntime-web.</p>
<form id="form">
  <textarea id="problem" rows="3">Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?</textarea>
  <button id="run" type="submit" disabled>Think</button>
</form>
<div id="status">loading…</div>
<h2>Latent superpositions</h2>
<div id="steps"></div>
<h2>Answer</h2>
<div id="answer"></div>
<script type="module" src="app.js"></script>
</body>
</html>
`;
