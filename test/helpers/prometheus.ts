import { execFile } from 'node:child_process';

/** One sample of a scrape, as the Prometheus project's Python client parses it. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  /** Without `_total` for counters (the parser's naming). */
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const PYTHON = '/usr/bin/python3';
const SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
families = text_string_to_metric_families(sys.stdin.read())
print(json.dumps([{ 'name': f.name, 'type': f.type, 'help': f.documentation,
  'samples': [{ 'name': s.name, 'labels': s.labels, 'value': s.value if math.isfinite(s.value) else str(s.value) } for s in f.samples] } for f in families]))
`;

/**
 * Parses the Prometheus text format with the Prometheus project's own Python client
 * (`prometheus_client.parser`, Debian's python3-prometheus-client), which refuses malformed input.
 * npm's only text-format parser (parse-prometheus-text-format 1.1.1) merges every labelled series
 * of a histogram into one and drops their labels, so it cannot read these metrics.
 */
export function parsePrometheus(text: string): Promise<Family[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, ['-c', SCRIPT], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`the Prometheus parser refused the scrape: ${stderr || err.message}`));
      resolve(JSON.parse(stdout) as Family[]);
    });
    child.stdin?.end(text);
  });
}

/** Why the parser cannot run here, or undefined when it can. */
export async function prometheusParserMissing(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(PYTHON, ['-c', 'import prometheus_client.parser'], (err) => {
      resolve(err ? `${PYTHON} with prometheus_client is not installed (apt-get install python3-prometheus-client): ${err.message.split('\n')[0]}` : undefined);
    });
  });
}

/** The samples named `name` whose labels include `labels`. */
export function samples(families: Family[], name: string, labels: Record<string, string> = {}): Sample[] {
  return families.flatMap((f) => f.samples).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one value of a series; fails when there is none or more than one. */
export function value(families: Family[], name: string, labels: Record<string, string> = {}): number {
  const found = samples(families, name, labels);
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return (found[0] as Sample).value;
}
