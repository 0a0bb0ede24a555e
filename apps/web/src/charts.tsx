import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Title,
  Tooltip,
  type Plugin,
} from "chart.js";
import { useEffect, useRef, type ReactNode } from "react";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Title, Tooltip);

export interface BarSeries {
  label: string;
  /** null: nothing to measure (the pair did not connect), written on the chart as "not reached". */
  values: (number | null)[];
}

const PALETTE = ["#1f6feb", "#c2410c", "#15803d", "#7c3aed", "#b91c1c"];

/** What a bar with no value says: the measured pair did not connect (the CLI's words). */
const NOT_REACHED = "not reached";

/**
 * Writes "not reached" where a bar has no value, so an empty slot never reads as zero: across the
 * category when there is one series and the word fits its width, upright otherwise (in the bar's own
 * slot when there are several series; on a phone, side by side words ran into each other). Upright, the
 * word is made smaller to fit the plot's height, and clipped to the plot at the smallest size: on a
 * phone's short plot it ran up into the legend.
 */
const unreachable: Plugin<"bar"> = {
  id: "unreachable",
  afterDatasetsDraw(chart) {
    const { ctx, scales, chartArea } = chart;
    const several = chart.data.datasets.length > 1;
    ctx.save();
    ctx.fillStyle = "#991b1b";
    const font = (px: number) => `bold ${px}px system-ui, sans-serif`;
    ctx.font = font(12);
    const width = ctx.measureText(NOT_REACHED).width;
    const slot = (scales.x!.right - scales.x!.left) / Math.max(1, chart.data.labels?.length ?? 1);
    const upright = several || width > slot - 6;
    if (upright) {
      const room = chartArea.height - 12;
      if (width > room) ctx.font = font(Math.max(8, Math.floor((12 * room) / width)));
      ctx.beginPath();
      ctx.rect(chartArea.left, chartArea.top, chartArea.width, chartArea.height);
      ctx.clip();
    }
    chart.data.datasets.forEach((dataset, d) => {
      const bars = chart.getDatasetMeta(d).data;
      dataset.data.forEach((v, i) => {
        if (v !== null) return;
        const x = several && Number.isFinite(bars[i]?.x) ? bars[i]!.x : scales.x!.getPixelForValue(i);
        ctx.save();
        ctx.translate(x, scales.y!.bottom - 8);
        if (upright) ctx.rotate(-Math.PI / 2);
        ctx.textAlign = upright ? "left" : "center";
        ctx.textBaseline = upright ? "middle" : "alphabetic";
        ctx.fillText(NOT_REACHED, 0, 0);
        ctx.restore();
      });
    });
    ctx.restore();
  },
};

/** A bar chart (chart.js) of one metric per category, with titled axes, for the compare and bench views. */
export function BarChart({
  title,
  axis,
  category = "provider",
  labels,
  series,
  min,
}: {
  title: string;
  /** The value axis' title, with its unit. */
  axis: string;
  category?: string;
  labels: string[];
  series: BarSeries[];
  /** Where the value axis starts, when zero would hide the differences. */
  min?: number;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
      type: "bar",
      data: {
        labels,
        datasets: series.map((s, i) => ({
          label: s.label,
          data: s.values,
          backgroundColor: PALETTE[i % PALETTE.length],
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          title: { display: true, text: title, font: { size: 15 }, color: "#111" },
          legend: { display: series.length > 1 },
        },
        scales: {
          x: { title: { display: true, text: category, color: "#333" }, ticks: { color: "#222" } },
          y: {
            title: { display: true, text: axis, color: "#333" },
            ticks: { color: "#222" },
            ...(min !== undefined ? { min } : { beginAtZero: true }),
          },
        },
      },
      plugins: [unreachable],
    });
    return () => chart.destroy();
  }, [title, axis, category, labels, series, min]);
  return (
    <div className="chart">
      <canvas ref={canvas} role="img" aria-label={`${title}: ${axis}`} />
    </div>
  );
}

/** A metric to chart: its title, its value axis' title with the unit, and how to read it off a row. */
export interface ChartSpec<R> {
  title: string;
  axis: string;
  pick: (r: R) => number | undefined;
}

/** The bench views' charts, two a row: one per metric, the same categories and series builder. */
export function ChartGrid<R>({
  charts,
  category,
  labels,
  series,
}: {
  charts: ChartSpec<R>[];
  category: string;
  labels: string[];
  series: (pick: (r: R) => number | undefined) => BarSeries[];
}) {
  return (
    <div className="charts">
      {charts.map((c) => (
        <BarChart
          key={c.title}
          title={c.title}
          axis={c.axis}
          category={category}
          labels={labels}
          series={series(c.pick)}
        />
      ))}
    </div>
  );
}

/** A figures table that scrolls sideways on its own on a narrow screen. */
export function FiguresTable({
  className,
  columns,
  children,
}: {
  className: string;
  columns: string[];
  children: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className={className}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
