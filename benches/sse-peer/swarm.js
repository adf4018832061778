'use strict';
// The peer of `patrol bench sse`: N subscribers, each an EventSource from the npm `eventsource`
// package (what a Node.js team would write), against the same event server as patrol's swarm.
//
//   node swarm.js URL N SECONDS
//
// Opens N EventSources, waits until all are open (at most 180 s), counts the events received in
// the next SECONDS seconds, and prints one JSON line the bench reads:
//   {held, rss_bytes, rss_base_bytes, events, seconds, connect_secs, cpu_secs}
// rss_bytes is the growth of the resident set since before the first EventSource, as on
// patrol's side. Each event's data is parsed and its seq kept, as patrol's swarm does.

const { EventSource } = require('eventsource');

const CONNECT_LIMIT_MS = 180_000;

function usage() {
  console.error('usage: node swarm.js URL N SECONDS');
  process.exit(2);
}

const [url, nText, secondsText] = process.argv.slice(2);
const n = Number(nText);
const seconds = Number(secondsText);
if (!url || !Number.isInteger(n) || n <= 0 || !(seconds > 0)) usage();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const base = process.memoryUsage().rss;
const highest = new Float64Array(n);
const sources = [];
let open = 0;
let events = 0;

for (let i = 0; i < n; i++) {
  const source = new EventSource(url);
  let isOpen = false;
  source.onopen = () => {
    if (!isOpen) {
      isOpen = true;
      open++;
    }
  };
  source.onerror = () => {
    // The connection dropped or failed; the EventSource reconnects by itself.
    if (isOpen) {
      isOpen = false;
      open--;
    }
  };
  source.onmessage = (event) => {
    events++;
    const seq = JSON.parse(event.data).seq;
    if (seq > highest[i]) highest[i] = seq;
  };
  sources.push(source);
}

async function main() {
  const started = Date.now();
  while (open < n && Date.now() - started < CONNECT_LIMIT_MS) await sleep(100);
  const connectSecs = (Date.now() - started) / 1000;
  const eventsBefore = events;
  const cpuBefore = process.cpuUsage();
  const windowStart = process.hrtime.bigint();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpuBefore);
  const report = {
    held: open,
    rss_bytes: Math.max(0, process.memoryUsage().rss - base),
    rss_base_bytes: base,
    events: events - eventsBefore,
    seconds: Number(process.hrtime.bigint() - windowStart) / 1e9,
    connect_secs: connectSecs,
    cpu_secs: (cpu.user + cpu.system) / 1e6,
  };
  console.log(JSON.stringify(report));
  for (const source of sources) source.close();
  process.exit(0);
}

main().catch((e) => {
  console.log(JSON.stringify({ held: 0, rss_bytes: 0, events: 0, error: String(e) }));
  process.exit(1);
});
