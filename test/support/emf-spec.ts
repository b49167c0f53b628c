/**
 * Checks a log line against the CloudWatch embedded metric format specification ("Specification:
 * Embedded metric format", CloudWatch User Guide) and returns every rule it breaks (empty: valid).
 * The `{Values, Counts}` target is the histogram form AWS's own EMF writer emits
 * (awslabs/metrique, `metrique-writer-format-emf`).
 */
export function emfProblems(line: string): string[] {
  const problems: string[] = [];
  let root: unknown;
  try {
    root = JSON.parse(line);
  } catch {
    return ['the line is not one JSON document'];
  }
  if (!isObject(root)) return ['the root is not an object'];
  const aws = root._aws;
  if (!isObject(aws)) return ['_aws is missing or not an object'];
  if (!Number.isSafeInteger(aws.Timestamp)) problems.push('_aws.Timestamp is not an integer (ms since the epoch)');
  const directives = aws.CloudWatchMetrics;
  if (!Array.isArray(directives) || directives.length === 0) return [...problems, '_aws.CloudWatchMetrics is not a non-empty array'];
  for (const directive of directives as unknown[]) {
    if (!isObject(directive)) {
      problems.push('a MetricDirective is not an object');
      continue;
    }
    const { Namespace: namespace, Dimensions: dimensions, Metrics: metrics } = directive;
    if (typeof namespace !== 'string' || namespace.length < 1 || namespace.length > 255) problems.push('Namespace is not a string of 1–255 characters');
    if (!Array.isArray(dimensions)) problems.push('Dimensions is not an array of DimensionSets');
    else {
      for (const set of dimensions as unknown[]) {
        if (!Array.isArray(set) || set.length > 30) {
          problems.push('a DimensionSet is not an array of at most 30 keys');
          continue;
        }
        for (const key of set as unknown[]) {
          if (typeof key !== 'string') problems.push('a dimension key is not a string');
          else if (typeof root[key] !== 'string' || root[key] === '' || root[key].length > 1024) problems.push(`dimension target ${key} is not a top-level string of 1–1024 characters`);
        }
      }
    }
    if (!Array.isArray(metrics) || metrics.length > 100) problems.push('Metrics is not an array of at most 100 MetricDefinitions');
    else {
      for (const metric of metrics as unknown[]) {
        if (!isObject(metric) || typeof metric.Name !== 'string' || metric.Name === '') {
          problems.push('a MetricDefinition has no Name');
          continue;
        }
        if (metric.Unit !== undefined && !UNITS.includes(metric.Unit as string)) problems.push(`Unit of ${metric.Name} is not a CloudWatch unit`);
        const problem = targetProblem(root[metric.Name]);
        if (problem !== undefined) problems.push(`metric target ${metric.Name} ${problem}`);
      }
    }
  }
  return problems;
}

const UNITS = ['Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numbers(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'number' && Number.isFinite(v));
}

function targetProblem(target: unknown): string | undefined {
  if (typeof target === 'number') return Number.isFinite(target) ? undefined : 'is not finite';
  if (Array.isArray(target)) return numbers(target) && target.length <= 100 ? undefined : 'is not an array of at most 100 numbers';
  if (isObject(target)) {
    const { Values: values, Counts: counts } = target;
    if (!numbers(values) || values.length === 0 || values.length > 100) return 'has no Values array of 1–100 numbers';
    if (!numbers(counts) || counts.length !== values.length) return 'has no Counts array as long as its Values';
    return undefined;
  }
  return 'is missing or neither a number, an array nor {Values, Counts}';
}
