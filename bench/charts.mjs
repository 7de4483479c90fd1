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

// A contender is a peer or a baseline when its name says so; every other row is Postern's.
const PEER =
  /cockatiel|opossum|bullmq|rate-limiter-flexible|t3-oss|t3-env|envalid|^pino|smtp-sink|pass-through|raw relay|^node-rs verify|naive|^argon2\.|bare call|bare ioredis|haraka|postfix/i;

const files = readdirSync(resultsDirectory).filter((file) => file.endsWith('.json'));
for (const file of files) {
  const saved = JSON.parse(readFileSync(join(resultsDirectory, file), 'utf8'));
  const unit = saved.results.some((result) => result.msgsPerSec !== undefined) ? 'msgs/s' : 'ops/s';
  // Rows without a rate (memory figures and the like) stay in the JSON and the docs, not the chart.
  const values = saved.results
    .map((result) => ({
      contender: result.name,
      rate: result.opsPerSec ?? result.msgsPerSec,
      ours: PEER.test(result.name) ? 'peer or baseline' : 'Postern',
    }))
    .filter((value) => typeof value.rate === 'number' && value.rate > 0);
  const ratios = Object.entries(saved.ratios ?? {}).map(([pair, value]) => ({
    pair,
    value,
    verdict: value >= 1 ? 'at or above 1' : 'below 1',
  }));
  // Log-scale bars need a positive baseline: the power of ten at or below the smallest rate.
  const baseline = 10 ** Math.floor(Math.log10(Math.min(...values.map((value) => value.rate))));
  const rates = {
    title: `Throughput (${unit}, log scale, higher is better)`,
    width: 520,
    height: { step: 22 },
    data: { values },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: {
        field: 'contender',
        type: 'nominal',
        sort: '-x',
        title: null,
        axis: { labelLimit: 440 },
      },
      x: {
        field: 'rate',
        type: 'quantitative',
        scale: { type: 'log', domainMin: baseline },
        title: unit,
      },
      x2: { datum: baseline },
      color: {
        field: 'ours',
        type: 'nominal',
        scale: { domain: ['Postern', 'peer or baseline'], range: ['#2f6fdf', '#a0a7b4'] },
        legend: { title: null, orient: 'bottom' },
      },
    },
  };
  const ratioChart = {
    title: 'Ratios as the bench prints them (first named / second named; the line is 1.0)',
    width: 520,
    height: { step: 22 },
    data: { values: ratios },
    layer: [
      {
        mark: { type: 'bar', tooltip: true },
        encoding: {
          y: { field: 'pair', type: 'nominal', sort: null, title: null, axis: { labelLimit: 440 } },
          x: { field: 'value', type: 'quantitative', title: 'ratio' },
          color: {
            field: 'verdict',
            type: 'nominal',
            scale: { domain: ['at or above 1', 'below 1'], range: ['#2f9e5a', '#d9822b'] },
            legend: { title: null, orient: 'bottom' },
          },
        },
      },
      { mark: { type: 'rule', color: '#333' }, encoding: { x: { datum: 1 } } },
      {
        mark: { type: 'text', align: 'left', dx: 4 },
        encoding: {
          y: { field: 'pair', type: 'nominal', sort: null },
          x: { field: 'value', type: 'quantitative' },
          text: { field: 'value', type: 'quantitative', format: '.2f' },
        },
      },
    ],
  };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: saved.title,
      subtitle: `${saved.machine.cpu}, ${saved.machine.cores} cores, Node ${saved.machine.node}`,
    },
    vconcat: ratios.length > 0 ? [ratioChart, rates] : [rates],
    resolve: { scale: { color: 'independent' } },
    config: { font: 'sans-serif', view: { stroke: null } },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const target = join(chartsDirectory, file.replace(/\.json$/, '.svg'));
  writeFileSync(target, svg);
  console.log(`wrote ${target}`);
}
