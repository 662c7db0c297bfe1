import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { MinuteStats } from '../../../services/contract/index.js';
import { h } from '../lib/dom.js';


const AXIS = { stroke: '#8b9aa8', grid: { stroke: '#2a3642', width: 1 }, ticks: { stroke: '#2a3642', width: 1 } };

/**
 * The two charts of the last hour (uPlot): images classified per minute, and upload→result
 * latency p50/p95 per minute. Data in, nothing fetched here.
 */
export class PipelineCharts {
  readonly element: HTMLElement;
  private throughput: uPlot;
  private latency: uPlot;
  private readonly observer: ResizeObserver;

  constructor() {
    const throughputBox = h('div', { class: 'chart', id: 'chart-throughput' });
    const latencyBox = h('div', { class: 'chart', id: 'chart-latency' });
    this.element = h('div', { class: 'charts' },
      h('figure', {}, h('figcaption', {}, 'Throughput: images with a result per minute'), throughputBox),
      h('figure', {}, h('figcaption', {}, 'Upload → result latency per minute (seconds)'), latencyBox));
    const empty: uPlot.AlignedData = [[], []];
    this.throughput = new uPlot({
      width: 480, height: 200,
      legend: { show: true },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{ ...AXIS }, { ...AXIS, label: 'images/min' }],
      series: [{}, { label: 'images/min', stroke: '#4ea1ff', fill: 'rgba(78,161,255,0.18)', width: 2, points: { show: false } }],
    }, empty, throughputBox);
    this.latency = new uPlot({
      width: 480, height: 200,
      legend: { show: true },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{ ...AXIS }, { ...AXIS, label: 'seconds' }],
      series: [
        {},
        // Points too: a minute between empty minutes has no line to draw.
        { label: 'p50', stroke: '#5fbf7f', width: 2, spanGaps: false, points: { show: true, size: 5, fill: '#5fbf7f' } },
        { label: 'p95', stroke: '#ffc233', width: 2, spanGaps: false, points: { show: true, size: 5, fill: '#ffc233' } },
      ],
    }, [[], [], []], latencyBox);
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(this.element);
  }

  private resize() {
    for (const chart of [this.throughput, this.latency]) {
      const width = Math.max(240, (chart.root.parentElement?.clientWidth ?? 480) - 4);
      if (Math.abs(chart.width - width) > 2) chart.setSize({ width, height: 200 });
    }
  }

  update(minutes: MinuteStats[]) {
    const x = minutes.map((m) => m.minute / 1000);
    this.throughput.setData([x, minutes.map((m) => m.results)]);
    this.latency.setData([
      x,
      minutes.map((m) => (m.p50Ms === null ? null : m.p50Ms / 1000)),
      minutes.map((m) => (m.p95Ms === null ? null : m.p95Ms / 1000)),
    ]);
  }

  destroy() {
    this.observer.disconnect();
    this.throughput.destroy();
    this.latency.destroy();
  }
}
