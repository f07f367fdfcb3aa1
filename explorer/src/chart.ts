// A small chart on <canvas>: one series of points, drawn as bars or a line, with min/max labels.
import { h } from "./dom.js";

export interface Series {
  label: string;
  points: { x: number; y: number }[];
  kind: "bars" | "line";
  unit: string;
}

export function chart(series: Series, id?: string): HTMLElement {
  const canvas = h("canvas", {
    width: 600,
    height: 180,
    class: "chart",
    ...(id ? { id } : {}),
  }) as HTMLCanvasElement;
  const wrap = h("figure", { class: "chart-wrap" }, canvas, h("figcaption", {}, series.label));
  requestAnimationFrame(() => draw(canvas, series));
  return wrap;
}

function draw(canvas: HTMLCanvasElement, series: Series): void {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600;
  const hgt = canvas.clientHeight || 180;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(hgt * ratio);
  const g = canvas.getContext("2d");
  if (!g) return;
  g.scale(ratio, ratio);
  const css = getComputedStyle(canvas);
  const ink = css.color || "#222";
  g.clearRect(0, 0, w, hgt);
  g.font = "11px sans-serif";
  g.fillStyle = ink;
  const pts = series.points;
  if (pts.length === 0) {
    g.fillText("no data yet", 10, hgt / 2);
    return;
  }
  const left = 44;
  const bottom = hgt - 18;
  const top = 8;
  const maxY = Math.max(...pts.map((p) => p.y), 1e-9);
  const minX = Math.min(...pts.map((p) => p.x));
  const maxX = Math.max(...pts.map((p) => p.x));
  const spanX = maxX - minX || 1;
  const X = (x: number) => left + ((x - minX) / spanX) * (w - left - 8);
  const Y = (y: number) => bottom - (y / maxY) * (bottom - top);
  g.strokeStyle = "#999";
  g.beginPath();
  g.moveTo(left, top);
  g.lineTo(left, bottom);
  g.lineTo(w - 4, bottom);
  g.stroke();
  g.fillText(`${fmt(maxY)} ${series.unit}`, 2, top + 8);
  g.fillText("0", left - 12, bottom);
  g.fillText(`#${minX}`, left, hgt - 4);
  g.fillText(`#${maxX}`, w - 40, hgt - 4);
  g.fillStyle = g.strokeStyle = "#2a7ab8";
  if (series.kind === "bars") {
    const bw = Math.max(2, (w - left - 8) / pts.length - 2);
    for (const p of pts) g.fillRect(X(p.x) - bw / 2, Y(p.y), bw, bottom - Y(p.y));
  } else {
    g.lineWidth = 2;
    g.beginPath();
    for (const [i, p] of pts.entries()) {
      if (i === 0) g.moveTo(X(p.x), Y(p.y));
      else g.lineTo(X(p.x), Y(p.y));
    }
    g.stroke();
  }
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
