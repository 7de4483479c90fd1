#!/usr/bin/env node
// Renders one SVG bar chart per saved result (bench/results/<name>.json -> docs/charts/<name>.svg)
// with vega-lite and vega's headless renderer: no browser, no canvas.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import { compile } from 'vega-lite';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDirectory = join(here, 'results');
const chartsDirectory = join(here, '..', 'docs', 'charts');
mkdirSync(chartsDirectory, { recursive: true });

const files = readdirSync(resultsDirectory).filter((file) => file.endsWith('.json'));
for (const file of files) {
  const saved = JSON.parse(readFileSync(join(resultsDirectory, file), 'utf8'));
  const unit = saved.results.some((result) => result.msgsPerSec !== undefined) ? 'msgs/s' : 'ops/s';
  const values = saved.results.map((result) => ({
    contender: result.name,
    rate: result.opsPerSec ?? result.msgsPerSec,
    ours: /postern|ours/i.test(result.name) ? 'Postern' : 'peer',
  }));
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: saved.title, subtitle: `${saved.machine.cpu}, ${saved.machine.cores} cores, Node ${saved.machine.node}` },
    width: 520,
    height: { step: 26 },
    data: { values },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'contender', type: 'nominal', sort: '-x', title: null, axis: { labelLimit: 260 } },
      x: { field: 'rate', type: 'quantitative', title: `${unit} (higher is better)` },
      color: {
        field: 'ours',
        type: 'nominal',
        scale: { domain: ['Postern', 'peer'], range: ['#2f6fdf', '#a0a7b4'] },
        legend: { title: null, orient: 'bottom' },
      },
    },
    config: { font: 'sans-serif', view: { stroke: null } },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const target = join(chartsDirectory, file.replace(/\.json$/, '.svg'));
  writeFileSync(target, svg);
  console.log(`wrote ${target}`);
}
