// Reads a V8 CPU profile (`node --cpu-prof`) and says where the time went by component: each
// sample goes to the nearest frame on its stack, leaf first, that belongs to a component (so the
// crypto that SigV4 runs counts as "AWS SDK", the socket writes of the ICOM client as "ICOM/DICT
// HTTP"). Measurement only, used by scripts/bench-demo-cost.ts --profile.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Components in the order they are tried on each frame; the first whose test matches wins. */
const COMPONENTS: readonly (readonly [string, (url: string) => boolean])[] = [
  ['AWS SDK: SigV4 signing', (u) => u.includes('/@smithy/signature-v4/') || u.includes('/@aws-sdk/core/dist-cjs/submodules/httpAuthSchemes')],
  ['AWS SDK: serialize/parse', (u) => /\/@smithy\/core\/dist-cjs\/submodules\/(protocols|serde|schema|cbor)\//u.test(u) || u.includes('/@aws-sdk/core/dist-cjs/submodules/protocols') || u.includes('/@aws-sdk/dynamodb-codec/') || u.includes('/@smithy/util-base64/') || u.includes('/@smithy/util-utf8/')],
  ['AWS SDK: HTTP handler', (u) => u.includes('/@smithy/node-http-handler/') || u.includes('/@smithy/fetch-http-handler/')],
  ['AWS SDK: middleware, endpoints, retry', (u) => u.includes('/@smithy/') || u.includes('/@aws-sdk/')],
  ['sqs-consumer', (u) => u.includes('/sqs-consumer/')],
  ['HSM (PKCS#11)', (u) => u.includes('/pkcs11js/') || u.includes('/graphene-pk11/') || u.includes('/shared/hsm/')],
  ['XML-DSig (c14n, digest, signature)', (u) => u.includes('/shared/xmldsig/')],
  ['XML build, parse, XSD', (u) => u.includes('/shared/xml/') || u.includes('/shared/iso20022/') || u.includes('/libxml2-wasm/') || u.startsWith('wasm://') || u.includes('/@xmldom/')],
  ['ICOM/DICT HTTP (undici)', (u) => u.includes('/undici/') || u.includes('/shared/bcb-client/') || u.includes('/shared/dict/')],
  ['logging (pino)', (u) => u.includes('/pino') || u.includes('/@pinojs/') || u.includes('/sonic-boom/') || u.includes('/thread-stream/') || u.includes('/shared/logging/')],
  ['event envelopes', (u) => u.includes('/shared/events/')],
  ['saga store', (u) => u.includes('/shared/saga/')],
  ['audit producer', (u) => u.includes('/shared/audit/')],
  ['worker runtime', (u) => u.includes('/shared/runtime/')],
  ['worker handlers', (u) => u.includes('/workers/')],
  ['other selo code', (u) => u.includes('/shared/') || u.includes('/bin/') || u.includes('/infra/')],
  ['other npm packages', (u) => u.includes('/node_modules/')],
];

const NO_CALLER = 'no caller';

function nativeKind(functionName: string): string {
  if (functionName === '(program)') return 'V8 (program: compiler, ICs, runtime)';
  if (functionName === 'runMicrotasks' || functionName === 'processTicksAndRejections') return 'promise jobs and ticks (no caller)';
  if (/^(writev|writeUtf8String|writeBuffer|writeLatin1String|writeAsciiString|onStreamRead|utf8Slice|latin1Slice)$/u.test(functionName)) return 'socket reads and writes (no caller)';
  return 'Node/V8 other (no caller)';
}

/** Microseconds per component, plus `GC`, `idle` and the native work that no component called. */
export function summarizeCpuProfile(file: string): Map<string, number> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const componentOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = componentOf.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id);
    let found: string;
    if (node === undefined) found = NO_CALLER;
    else if (node.callFrame.functionName === '(garbage collector)') found = 'GC';
    else if (node.callFrame.functionName === '(idle)') found = 'idle';
    else {
      const hit = COMPONENTS.find(([, test]) => test(node.callFrame.url));
      const parent = parentOf.get(id);
      found = hit !== undefined ? hit[0] : parent === undefined ? NO_CALLER : classify(parent);
    }
    componentOf.set(id, found);
    return found;
  };
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    let component = classify(id);
    // A native frame with no component above it: name what it is.
    if (component === NO_CALLER) component = nativeKind(byId.get(id)?.callFrame.functionName ?? '');
    totals.set(component, (totals.get(component) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return totals;
}

/** Adds `more` into `into`. */
export function addTotals(into: Map<string, number>, more: ReadonlyMap<string, number>): void {
  for (const [key, value] of more) into.set(key, (into.get(key) ?? 0) + value);
}

/**
 * Rows of the busy time (idle left out): component, ms per payment and share, largest first.
 */
export function componentRows(totals: ReadonlyMap<string, number>, payments: number): { component: string; msPerPayment: number; share: number }[] {
  const busy = [...totals].filter(([key]) => key !== 'idle').reduce((sum, [, us]) => sum + us, 0);
  return [...totals]
    .filter(([key]) => key !== 'idle')
    .sort((a, b) => b[1] - a[1])
    .map(([component, us]) => ({ component, msPerPayment: Math.round(us / 1000 / payments * 100) / 100, share: busy === 0 ? 0 : Math.round((1000 * us) / busy) / 10 }));
}
