import type { X509Certificate } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { buildDictProblem } from '../../shared/dict/index.ts';
import { compileSpiSchemas } from '../../shared/iso20022/index.ts';
import { createLogger } from '../../shared/logging/index.ts';
import type { Logger } from '../../shared/logging/index.ts';
import { certificateIspb } from '../../shared/pki/index.ts';
import { TrustStore } from '../../shared/xmldsig/index.ts';
import { DictService } from './dict-service.ts';
import { FaultController } from './faults.ts';
import type { FaultSettings } from './faults.ts';
import { InboundTraffic } from './inbound-traffic.ts';
import type { InboundTrafficControl, InboundTrafficOptions } from './inbound-traffic.ts';
import { Ledger } from './ledger.ts';
import { Mailbox } from './mailbox.ts';
import type { OutboundMessage, StreamCounters, StreamState } from './mailbox.ts';
import { buildMultipart, multipartBoundary, parseMultipart } from './multipart.ts';
import { DUPLICATE_INSTRUCTION_REASON, SettlementEngine } from './settlement-engine.ts';
import { reservedPayerIspbs, resolveSimulatorOptions, validateReceiver } from './simulator-options.ts';
import type { BcbSimulatorOptions, ReceiverBehaviour, ResolvedSimulatorOptions } from './simulator-options.ts';
import { SpiEmitter, newResourceId } from './spi-emitter.ts';
import { SpiProcessor } from './spi-processor.ts';
import { ThreadedSpiInspector, inlineSpiInspector } from './spi-inspector.ts';
import type { SpiInspector } from './spi-inspector.ts';

const gzipAsync = promisify(gzip);
/** One strict UTF-8 decoder for every posted message (a decoder without `stream` keeps no state between calls). */
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const gunzipAsync = promisify(gunzip);

/** Participant behaviour, changeable while the simulator runs. */
export interface ParticipantControl {
  /** Sets how `ispb` answers pacs.008 addressed to it. */
  setReceiver(ispb: string, behaviour: ReceiverBehaviour): void;
  /** How `ispb` answers now. */
  receiverOf(ispb: string): ReceiverBehaviour;
  /** Trusts `certificate` for messages signed by `ispb` (SPI and DICT). */
  addSigningCertificate(ispb: string, certificate: string | Buffer | X509Certificate): void;
}

/** A running simulator: its URLs, what it saw, and its controls. */
export interface BcbSimulator {
  /** `https://127.0.0.1:<port>`: ICOM under `/api/v1`, DICT under `/api/v2`. */
  readonly url: string;
  /** ICOM base URL (`…/api/v1`). */
  readonly icomUrl: string;
  /** DICT base URL (`…/api/v2`). */
  readonly dictUrl: string;
  /** Plain-HTTP admin URL on loopback, or undefined when disabled. */
  readonly adminUrl: string | undefined;
  /** The mTLS port. */
  readonly port: number;
  /** What was received, settled, rejected and sent. */
  readonly ledger: Ledger;
  /** Fault injection (set/clear/current/counts). */
  readonly faults: FaultController;
  /** Receiver behaviour and trusted signing certificates. */
  readonly participants: ParticipantControl;
  /** The simulated DICT's entries and claims. */
  readonly dict: DictService;
  /** Simulated payer PSPs paying a participant (the inbound traffic generator). */
  readonly inbound: InboundTrafficControl;
  /**
   * Sends a signed pibr.001 (the SPI's echo request) to `ispb`'s stream and returns its BizMsgIdr;
   * the participant's pibr.002 repeating `data` is recorded in {@link Ledger.echoes}.
   * `data` is 1–35 characters; by default a fresh 32-hex-digit value, so that answers match one echo.
   * @throws RangeError naming `ispb` or `data` when malformed.
   */
  echo(ispb: string, data?: string): string;
  /** Messages waiting on `ispb`'s stream (not delivered or returned for redelivery). */
  queued(ispb: string): number;
  /** Open streams of `ispb`. */
  openStreams(ispb: string): number;
  /** Counters of `ispb`'s streams: started, refused with 429, expired idle, re-read (zeros for a participant that never read). */
  streamCounters(ispb: string): StreamCounters;
  /** Resolves once every posted message has been processed. */
  idle(): Promise<void>;
  /** Stops listening, ends connections and timers; idempotent; runs every step even if one fails. */
  close(): Promise<void>;
}

class HttpProblem extends Error {
  readonly status: number;
  readonly type: string;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, type: string, detail: string, headers: Readonly<Record<string, string>> = {}) {
    super(detail);
    this.status = status;
    this.type = type;
    this.headers = headers;
  }
}

const ICOM_ERROR_BASE = 'https://icom.pi.rsfn.net.br/api/v1/error/';
/**
 * TLS 1.2 suites the simulator offers: ECDHE key exchange (forward secrecy) with AES-GCM only, so
 * that a client which could only negotiate a static-RSA (`AES128-SHA`) or CBC suite fails here as
 * it would at the BCB. ICOM manual 1.12 §1.1 (Conectividade), restated in apolzek/open-pix
 * docs/reference/icom-api.md ("Cipher suite ECDHE-RSA-AES-128-GCM-SHA256 (0xc02f) must be
 * supported"); DESIGN §2. The manual names only that suite as mandatory; its AES-256 sibling is
 * also offered (an assumption: no BCB list of the other suites it accepts was found). TLS 1.3
 * suites (all AEAD with ephemeral keys) stay at Node's defaults.
 */
const ICOM_TLS12_CIPHERS = ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-AES256-GCM-SHA384'].join(':');
// TLS fatal alert handshake_failure (RFC 5246 §7.2): level 2, description 40.
const HANDSHAKE_FAILURE_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);

function sendProblem(res: ServerResponse, problem: HttpProblem, base: string): void {
  if (res.headersSent || res.destroyed) return;
  const body = buildDictProblem({ type: `${base}${problem.type}`, title: problem.type, status: problem.status, detail: problem.message });
  res.writeHead(problem.status, { 'content-type': 'application/problem+xml; charset=utf-8', ...problem.headers });
  res.end(body);
}

/** The raw body, events rather than an async iterator (cheaper per request, on the hot path). */
function collectBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else {
        req.off('data', onData);
        req.resume();
        reject(new HttpProblem(413, 'PayloadTooLarge', `the body exceeds ${limit} bytes`));
      }
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const body = await collectBody(req, limit);
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding === 'identity') return body;
  if (encoding !== 'gzip') throw new HttpProblem(415, 'UnsupportedMediaType', `Content-Encoding ${encoding} is not supported (gzip only)`);
  try {
    return await gunzipAsync(body, { maxOutputLength: limit });
  } catch (error) {
    throw new HttpProblem(400, 'BadRequest', `the gzip body cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The value of one comma-separated item of an Accept-like header, without parameters, lower case. */
function mediaRange(item: string): string {
  return (item.split(';')[0] ?? '').trim().toLowerCase();
}

function isXmlUtf8(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  if (contentType === 'application/xml; charset=utf-8') return true; // what clients send; the rest is parsed
  const [type, ...params] = contentType.split(';').map((s) => s.trim().toLowerCase());
  return type === 'application/xml' && params.some((p) => p.replace(/\s/g, '') === 'charset=utf-8' || p.replace(/\s/g, '') === 'charset="utf-8"');
}

/**
 * Starts the BCB simulator: ICOM and DICT over mutual TLS (HTTP/1.1 only, TLS ≥ 1.2, client
 * certificates from the development CA, each bound to the ISPB in its subject's
 * `serialNumber`), and a plain-HTTP admin endpoint on loopback.
 */
export async function startBcbSimulator(input: BcbSimulatorOptions): Promise<BcbSimulator> {
  const options: ResolvedSimulatorOptions = resolveSimulatorOptions(input);
  const logger: Logger = options.logger ?? createLogger({ name: 'bcb-simulator', level: 'warn' });
  const faults = new FaultController(options.faults);
  const ledger = new Ledger();
  const trustStore = new TrustStore();
  const receivers = new Map<string, ReceiverBehaviour>();
  const signers = options.participants.flatMap((p) => (p.signingCertificates ?? []).map((certificate) => ({ certificate, ispb: p.ispb })));
  for (const signer of signers) trustStore.add(signer.certificate, { ispb: signer.ispb });
  for (const participant of options.participants) if (participant.receiver !== undefined) receivers.set(participant.ispb, participant.receiver);
  if (options.schemaValidation) await compileSpiSchemas(); // on this thread, for either inspector
  const inspector: SpiInspector =
    options.inspectionThreads === 0
      ? inlineSpiInspector(trustStore, { schemaValidation: options.schemaValidation })
      : new ThreadedSpiInspector({ threads: options.inspectionThreads, trustStore, signers, settings: { schemaValidation: options.schemaValidation }, logger });
  const mailboxes = new Map<string, Mailbox>();
  const mailbox = (ispb: string): Mailbox => {
    let box = mailboxes.get(ispb);
    if (box === undefined) {
      box = new Mailbox(
        ispb,
        {
          delivered: (m) => ledger.markSent(m.resourceId, 'delivered'),
          confirmed: (m) => ledger.markSent(m.resourceId, 'confirmed'),
          duplicate: () => faults.duplicateDelivery(),
        },
        options.streamIdleTimeoutMs,
      );
      mailboxes.set(ispb, box);
    }
    return box;
  };
  const participants: ParticipantControl = {
    setReceiver(ispb, behaviour) {
      receivers.set(ispb, validateReceiver(`receiver of ${ispb}`, behaviour));
    },
    receiverOf: (ispb) => receivers.get(ispb) ?? options.defaultReceiver,
    addSigningCertificate(ispb, certificate) {
      trustStore.add(certificate, { ispb });
      inspector.trust(certificate, ispb);
    },
  };
  const inbound = new InboundTraffic({
    // What the SPI does with a posted pacs.008 once its checks passed (SpiProcessor.dispatch):
    // the payer's message is on record, a known EndToEndId is refused (DUPLICATE_INSTRUCTION_REASON), anything else settles.
    submit(transaction, bizMsgIdr, payerIspb) {
      const now = new Date();
      ledger.recordReceived({ resourceId: newResourceId(), ispb: payerIspb, receivedAt: now.toISOString(), type: 'pacs.008', bizMsgIdr, outcome: 'accepted' });
      if (ledger.hasPayment(transaction.endToEndId)) engine.refuse(transaction, payerIspb, DUPLICATE_INSTRUCTION_REASON, `EndToEndId ${transaction.endToEndId} duplicado`);
      else engine.begin(transaction, bizMsgIdr, payerIspb, now);
    },
    reserved: reservedPayerIspbs(options.bcbIspb, options.participants),
    logger,
  });
  const emitter = new SpiEmitter({ bcbIspb: options.bcbIspb, key: options.signingKey, mailbox, ledger, faults, simulated: (ispb) => inbound.isSimulatedPayer(ispb) });
  const engine = new SettlementEngine({
    ledger, emitter, faults, receiverOf: (ispb) => participants.receiverOf(ispb), settlementLimitMs: options.settlementLimitMs, logger,
    decided: (payment) => inbound.decided(payment),
  });
  const processor = new SpiProcessor({ bcbIspb: options.bcbIspb, inspector, ledger, emitter, engine, logger });
  const dict = new DictService({
    key: options.signingKey,
    trustStore,
    faults,
    entryReadPolicy: options.dictEntryReadPolicy,
    writePolicy: options.dictWritePolicy,
    claimResolutionPeriodMs: options.dictClaimResolutionPeriodMs,
    claimCompletionPeriodMs: options.dictClaimCompletionPeriodMs,
  });
  const callerIspb = new WeakMap<object, string | undefined>();

  function echo(ispb: string, data: string = newResourceId()): string {
    if (typeof ispb !== 'string' || !/^[0-9A-Z]{8}$/.test(ispb) || ispb === options.bcbIspb) {
      throw new RangeError(`echo ispb must be a participant's ISPB (8 characters [0-9A-Z], not the BCB's), got ${JSON.stringify(ispb)}`);
    }
    // pibr.001 EchoTxInf/Data is Max35Text (catalogue 5.13.1); checked here, since the message is built at first delivery.
    if (typeof data !== 'string' || data.length < 1 || data.length > 35) throw new RangeError(`echo data must be 1 to 35 characters, got ${JSON.stringify(data)}`);
    const { header } = emitter.pibr001(ispb, data);
    ledger.recordEcho({ bizMsgIdr: header.bizMsgIdr, toIspb: ispb, data, sentAt: header.creDt });
    return header.bizMsgIdr;
  }

  function ispbOf(req: IncomingMessage): string | undefined {
    const socket = req.socket as TLSSocket;
    if (callerIspb.has(socket)) return callerIspb.get(socket);
    const raw = socket.getPeerCertificate().raw as Buffer | undefined;
    const ispb = raw === undefined ? undefined : certificateIspb(raw);
    callerIspb.set(socket, ispb);
    return ispb;
  }

  // ---- ICOM --------------------------------------------------------------------------------

  function checkIcomHeaders(req: IncomingMessage): void {
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = (req.rawHeaders[i] ?? '').toLowerCase();
      if (!options.allowedHeaders.includes(name)) throw new HttpProblem(400, 'BadRequest', `header ${name} is not allowed by ICOM`);
    }
    const host = req.headers.host ?? '';
    // DESIGN §2: Host without port.
    if (/:\d+$/.test(host)) throw new HttpProblem(400, 'BadRequest', `Host must not carry a port, got ${JSON.stringify(host)}`);
    // ICOM manual 1.12 §2.1.8 (restated in apolzek/open-pix docs/reference/icom-api.md): Accept,
    // if present, only application/xml, multipart/mixed or */* (406 otherwise, the manual's table
    // of return codes); Accept-Encoding, if present, only gzip. The status for a refused
    // Accept-Encoding is not stated there: 406, as for Accept, is this simulator's assumption.
    const accept = req.headers.accept;
    if (accept !== undefined && !accept.split(',').every((v) => ['application/xml', 'multipart/mixed', '*/*'].includes(mediaRange(v)))) {
      throw new HttpProblem(406, 'NotAcceptable', `Accept must be application/xml, multipart/mixed or */*, got ${JSON.stringify(accept)}`);
    }
    const acceptEncoding = req.headers['accept-encoding'];
    if (acceptEncoding !== undefined && !acceptEncoding.split(',').every((v) => mediaRange(v) === 'gzip')) {
      throw new HttpProblem(406, 'NotAcceptable', `Accept-Encoding must be gzip, got ${JSON.stringify(acceptEncoding)}`);
    }
  }

  /** ICOM POSTs taken so far: each received message records the one that carried it. */
  let posts = 0;

  async function postMessages(req: IncomingMessage, res: ServerResponse, ispb: string): Promise<void> {
    const contentType = req.headers['content-type'];
    const body = await readBody(req, options.maxBodyBytes);
    let documents: Buffer[];
    if (contentType?.toLowerCase().startsWith('multipart/mixed')) {
      const boundary = multipartBoundary(contentType);
      if (boundary === undefined) throw new HttpProblem(400, 'BadRequest', 'multipart/mixed without boundary');
      let parts;
      try {
        parts = parseMultipart(body, boundary);
      } catch (error) {
        throw new HttpProblem(400, 'BadRequest', error instanceof Error ? error.message : String(error));
      }
      parts.forEach((part, i) => {
        if (!isXmlUtf8(part.headers['content-type'])) throw new HttpProblem(415, 'UnsupportedMediaType', `part ${i + 1} must be application/xml; charset=utf-8`);
      });
      documents = parts.map((p) => p.body);
    } else if (isXmlUtf8(contentType)) {
      documents = [body];
    } else {
      throw new HttpProblem(415, 'UnsupportedMediaType', `Content-Type must be application/xml; charset=utf-8 or multipart/mixed, got ${JSON.stringify(contentType ?? '')}`);
    }
    if (documents.length < 1 || documents.length > options.maxMessagesPerPost) {
      throw new HttpProblem(400, 'BadRequest', `a POST carries 1 to ${options.maxMessagesPerPost} messages, got ${documents.length}`);
    }
    const texts = documents.map((d, i) => {
      try {
        return UTF8.decode(d);
      } catch {
        throw new HttpProblem(400, 'BadRequest', `message ${i + 1} is not UTF-8`);
      }
    });
    const receivedAt = new Date().toISOString();
    posts += 1;
    const post = posts;
    const resourceIds = texts.map((xml) => {
      const record = ledger.recordReceived({ resourceId: newResourceId(), ispb, receivedAt, post, outcome: 'processing' });
      processor.submit(record, xml);
      return record.resourceId;
    });
    // 201 means received, not valid: schema and signature errors arrive later as admi.002. One
    // PI-ResourceId per stored message, comma separated for a multipart POST (ICOM manual 1.12
    // §2.2.1, restated in apolzek/open-pix docs/reference/icom-api.md).
    res.writeHead(201, { 'PI-ResourceId': resourceIds.join(','), 'content-length': '0' });
    res.end();
  }

  function pullNext(ispb: string, stream: StreamState): string {
    return `/api/v1/out/${ispb}/stream/${stream.id}-${stream.seq}`;
  }

  /**
   * Answers one stream request: the next batch (long poll) under a new `PI-Pull-Next`, or, for a
   * re-read of the previous iteration with a batch still unconfirmed, that batch again under the
   * current one (see `Mailbox`'s rule on abandoned streams).
   */
  async function answerStream(req: IncomingMessage, res: ServerResponse, box: Mailbox, stream: StreamState, reread = false): Promise<void> {
    stream.busy = true;
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    res.on('close', onClose);
    try {
      const multipart = (req.headers.accept ?? '').toLowerCase().includes('multipart/mixed');
      const max = multipart ? options.maxMessagesPerPull : 1;
      let batch: OutboundMessage[];
      if (reread && stream.inflight.length > 0) {
        batch = box.redeliver(stream, max);
      } else {
        batch = await box.take(stream, max, options.longPollMs, abort.signal);
        stream.seq++;
      }
      box.touch(stream);
      const next = pullNext(box.ispb, stream);
      if (res.destroyed) return;
      if (batch.length === 0) {
        res.writeHead(204, { 'PI-Pull-Next': next });
        res.end();
        return;
      }
      const contents = await Promise.all(batch.map((m: OutboundMessage) => m.content()));
      let body: Buffer;
      const headers: Record<string, string> = { 'PI-Pull-Next': next };
      if (multipart) {
        const built = buildMultipart(batch.map((m, i) => ({ headers: { 'Content-Type': 'application/xml; charset=utf-8', 'PI-ResourceId': m.resourceId }, body: contents[i] ?? '' })));
        body = built.body;
        headers['content-type'] = `multipart/mixed; boundary=${built.boundary}`;
      } else {
        body = Buffer.from(contents[0] ?? '', 'utf8');
        headers['content-type'] = 'application/xml; charset=utf-8';
        headers['PI-ResourceId'] = batch[0]?.resourceId ?? '';
      }
      if ((req.headers['accept-encoding'] ?? '').toLowerCase().includes('gzip')) {
        body = await gzipAsync(body);
        headers['content-encoding'] = 'gzip';
      }
      headers['content-length'] = String(body.length);
      res.writeHead(200, headers);
      res.end(body);
    } finally {
      stream.busy = false;
      res.off('close', onClose);
    }
  }

  async function handleIcom(req: IncomingMessage, res: ServerResponse, url: URL, caller: string): Promise<void> {
    checkIcomHeaders(req);
    const match = /^\/api\/v1\/(in|out)\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (match === null) throw new HttpProblem(404, 'NotFound', `no ICOM resource ${url.pathname}`);
    const [, direction, pathIspb, rest] = match as unknown as [string, string, string, string];
    if (pathIspb !== caller) throw new HttpProblem(403, 'Forbidden', `the client certificate belongs to ${caller}, not to ${pathIspb}`);
    if (direction === 'in' && rest === 'msgs') {
      if (req.method !== 'POST') throw new HttpProblem(405, 'MethodNotAllowed', 'use POST', { allow: 'POST' });
      await postMessages(req, res, caller);
      return;
    }
    if (direction === 'out' && rest === 'stream/start') {
      if (req.method !== 'GET') throw new HttpProblem(405, 'MethodNotAllowed', 'use GET', { allow: 'GET' });
      const box = mailbox(caller);
      const stream = box.open(options.maxStreams);
      if (stream === undefined) throw new HttpProblem(429, 'TooManyRequests', `at most ${options.maxStreams} parallel streams per participant`);
      await answerStream(req, res, box, stream);
      return;
    }
    const streamMatch = direction === 'out' ? /^stream\/([0-9a-f]+)-(\d+)$/.exec(rest) : null;
    if (streamMatch !== null) {
      const box = mailbox(caller);
      const stream = box.streams.get(streamMatch[1] ?? '');
      const iteration = Number(streamMatch[2]);
      // The current iteration, or the one before it (re-read: its answer never reached the client).
      const current = stream !== undefined && iteration === stream.seq;
      const previous = stream !== undefined && iteration === stream.seq - 1;
      if (stream === undefined || (!current && !previous)) throw new HttpProblem(404, 'NotFound', `stream iteration ${rest} is not open (closed, expired or already followed)`);
      if (stream.busy) throw new HttpProblem(409, 'Conflict', 'this stream is answering another request');
      if (req.method === 'DELETE') {
        // DELETE of the current iteration confirms the last answer; of the previous one, the
        // answer before it (already confirmed): the unconfirmed batch goes back to the queue.
        box.close(stream, current);
        res.writeHead(200, { 'content-length': '0' });
        res.end();
        return;
      }
      if (req.method !== 'GET') throw new HttpProblem(405, 'MethodNotAllowed', 'use GET or DELETE', { allow: 'GET, DELETE' });
      // Following PI-Pull-Next confirms what the previous answer delivered (ICOM manual §2.2.2.2);
      // re-reading the previous iteration confirms nothing.
      if (current) box.confirm(stream);
      await answerStream(req, res, box, stream, previous);
      return;
    }
    throw new HttpProblem(404, 'NotFound', `no ICOM resource ${url.pathname}`);
  }

  // ---- DICT --------------------------------------------------------------------------------

  async function handleDict(req: IncomingMessage, res: ServerResponse, url: URL, caller: string): Promise<void> {
    const body = req.method === 'POST' || req.method === 'PUT' ? (await readBody(req, options.maxBodyBytes)).toString('utf8') : '';
    const answer = await dict.handle({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body, caller });
    let payload = Buffer.from(answer.body, 'utf8');
    const headers: Record<string, string> = { 'content-type': `${answer.contentType}; charset=utf-8`, ...answer.headers };
    if ((req.headers['accept-encoding'] ?? '').toLowerCase().includes('gzip')) {
      payload = await gzipAsync(payload);
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(payload.length);
    res.writeHead(answer.status, headers);
    res.end(payload);
  }

  // ---- request entry -----------------------------------------------------------------------

  const hanging = new Set<ServerResponse>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const surface = url.pathname.startsWith('/api/v2/') ? 'dict' : 'icom';
    const base = surface === 'dict' ? 'https://dict.pi.rsfn.net.br/api/v2/error/' : ICOM_ERROR_BASE;
    try {
      const caller = ispbOf(req);
      if (caller === undefined) throw new HttpProblem(403, 'Forbidden', 'the client certificate carries no ISPB (subject serialNumber)');
      const latency = faults.latencyFor(surface);
      if (latency > 0) await new Promise((r) => setTimeout(r, latency));
      const fault = faults.requestFault(surface);
      if (fault === 'reset') {
        req.socket.destroy();
        return;
      }
      if (fault === 'hang') {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        req.resume();
        return;
      }
      if (fault === 'error') throw new HttpProblem(faults.errorStatus, faults.errorStatus >= 500 ? 'ServiceUnavailable' : 'Forbidden', 'injected fault');
      if (fault === 'throttle') throw new HttpProblem(429, surface === 'dict' ? 'RateLimited' : 'TooManyRequests', 'injected fault', { 'retry-after': '1' });
      if (surface === 'dict') await handleDict(req, res, url, caller);
      else await handleIcom(req, res, url, caller);
    } catch (error) {
      if (error instanceof HttpProblem) {
        req.resume();
        if (surface === 'dict' && !res.headersSent) {
          const answer = await dict.problem(error.status, error.type, error.message);
          res.writeHead(error.status, { 'content-type': `${answer.contentType}; charset=utf-8`, ...error.headers });
          res.end(answer.body);
          return;
        }
        sendProblem(res, error, base);
        return;
      }
      logger.error({ err: error, path: url.pathname }, 'simulator request failed');
      sendProblem(res, new HttpProblem(500, 'InternalServerError', error instanceof Error ? error.message : String(error)), base);
    }
  }

  const server: HttpsServer = createHttpsServer(
    {
      key: options.tlsKey,
      cert: options.tlsCertificate,
      ca: Array.isArray(options.clientCa) ? [...(options.clientCa as (string | Buffer)[])] : (options.clientCa as string | Buffer),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ciphers: ICOM_TLS12_CIPHERS,
      honorCipherOrder: true,
      // DESIGN §2: HTTP/1.1 only; a client that offers only h2 gets no_application_protocol.
      ALPNProtocols: ['http/1.1'],
      keepAliveTimeout: 30_000,
    },
    (req, res) => {
      void handle(req, res);
    },
  );
  server.prependListener('connection', (socket: Socket) => {
    if (faults.failHandshake()) {
      socket.end(HANDSHAKE_FAILURE_ALERT);
      socket.destroySoon();
    }
  });
  server.on('tlsClientError', (error) => logger.debug({ err: error }, 'TLS client refused'));
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  let admin: HttpServer | undefined;
  let adminUrl: string | undefined;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });

    // ---- admin -----------------------------------------------------------------------------

    if (options.adminPort !== null) {
      admin = createHttpServer((req, res) => {
        void handleAdmin(req, res);
      });
      await new Promise<void>((resolve, reject) => {
        admin?.once('error', reject);
        admin?.listen(options.adminPort ?? 0, options.host, () => resolve());
      });
      adminUrl = `http://${hostForUrl}:${(admin.address() as AddressInfo).port}`;
    }
  } catch (error) {
    // A port in use: release what was started (the other server, the inspection threads).
    server.close();
    admin?.close();
    await inspector.close();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const url = `https://${hostForUrl}:${port}`;
  if (options.inboundTraffic !== undefined) inbound.start(options.inboundTraffic, 'BcbSimulatorOptions.inboundTraffic');

  async function handleAdmin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, value: unknown): void => {
      const body = JSON.stringify(value, null, 2);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    };
    try {
      const path = new URL(req.url ?? '/', 'http://localhost');
      const parts = path.pathname.split('/').filter((s) => s !== '');
      const readJson = async (): Promise<unknown> => {
        const text = (await readBody(req, 1024 * 1024)).toString('utf8');
        return text === '' ? {} : (JSON.parse(text) as unknown);
      };
      const route = `${req.method ?? 'GET'} /${parts.join('/')}`;
      if (route === 'GET /ledger/summary') return reply(200, ledger.summary());
      if (route === 'GET /ledger/payments') {
        const status = path.searchParams.get('status');
        return reply(200, ledger.payments(status === 'pending' || status === 'settled' || status === 'rejected' ? status : undefined));
      }
      if (req.method === 'GET' && parts[0] === 'ledger' && parts[1] === 'payments' && parts[2] !== undefined) {
        const payment = ledger.payment(parts[2]);
        return payment === undefined ? reply(404, { error: 'not found' }) : reply(200, payment);
      }
      if (route === 'GET /ledger/received') return reply(200, ledger.received());
      if (route === 'GET /ledger/sent') return reply(200, ledger.sent(path.searchParams.get('ispb') ?? undefined));
      if (route === 'GET /ledger/positions') return reply(200, ledger.positions());
      if (route === 'GET /ledger/echoes') return reply(200, ledger.echoes(path.searchParams.get('ispb') ?? undefined));
      if (req.method === 'POST' && parts[0] === 'echo' && parts[1] !== undefined && parts.length === 2) {
        const body = await readJson();
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new TypeError('the echo body must be a JSON object { "data"?: string }');
        const data = (body as { data?: unknown }).data;
        if (data !== undefined && typeof data !== 'string') throw new TypeError(`echo data must be a string, got ${JSON.stringify(data)}`);
        const bizMsgIdr = echo(parts[1], data);
        return reply(200, ledger.echoes(parts[1]).find((e) => e.bizMsgIdr === bizMsgIdr));
      }
      if (route === 'GET /faults') return reply(200, { current: faults.current, counts: faults.counts });
      if (route === 'PUT /faults') {
        faults.set((await readJson()) as FaultSettings);
        return reply(200, { current: faults.current });
      }
      if (route === 'DELETE /faults') {
        faults.clear();
        return reply(200, { current: faults.current });
      }
      if (req.method === 'GET' && parts[0] === 'participants' && parts[1] !== undefined && parts[2] === 'receiver') {
        return reply(200, participants.receiverOf(parts[1]));
      }
      if (req.method === 'PUT' && parts[0] === 'participants' && parts[1] !== undefined && parts[2] === 'receiver') {
        participants.setReceiver(parts[1], (await readJson()) as ReceiverBehaviour);
        return reply(200, participants.receiverOf(parts[1]));
      }
      if (route === 'GET /inbound-traffic') return reply(200, inbound.status());
      if (route === 'POST /inbound-traffic') return reply(200, inbound.start((await readJson()) as InboundTrafficOptions));
      if (route === 'DELETE /inbound-traffic') return reply(200, inbound.stop());
      if (route === 'GET /dict/entries') return reply(200, [...dict.entries.values()].map((e) => ({ key: e.key, participant: e.participant, openClaimId: dict.openClaimOf(e.key) })));
      if (route === 'GET /dict/claims') return reply(200, [...dict.claims.values()].map((c) => ({ id: c.id, key: c.key, status: c.status, claimer: c.claimer, donor: c.donor })));
      return reply(404, { error: `no admin resource ${route}` });
    } catch (error) {
      return reply(400, { error: error instanceof Error ? error.message : String(error) });
    }
  }

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    const steps: (() => Promise<void> | void)[] = [
      () => inbound.close(),
      () => engine.close(),
      () => {
        for (const box of mailboxes.values()) box.shutdown();
      },
      () => {
        for (const res of hanging) res.destroy();
      },
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          for (const socket of sockets) socket.destroy();
        }),
      () =>
        admin === undefined
          ? undefined
          : new Promise<void>((resolve) => {
              admin?.close(() => resolve());
              admin?.closeAllConnections();
            }),
      // Bounded: a stuck inspection must not keep close() waiting forever.
      () => Promise.race([processor.idle(), new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref())]),
      () => inspector.close(),
    ];
    const errors: unknown[] = [];
    for (const step of steps) {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'the BCB simulator did not close cleanly');
  }

  return {
    url,
    icomUrl: `${url}/api/v1`,
    dictUrl: `${url}/api/v2`,
    adminUrl,
    port,
    ledger,
    faults,
    participants,
    dict,
    inbound: { start: (settings) => inbound.start(settings), stop: () => inbound.stop(), status: () => inbound.status() },
    echo,
    queued: (ispb) => mailboxes.get(ispb)?.size ?? 0,
    openStreams: (ispb) => mailboxes.get(ispb)?.streams.size ?? 0,
    streamCounters: (ispb) => ({ ...(mailboxes.get(ispb)?.counters ?? { started: 0, refused: 0, expired: 0, reread: 0 }) }),
    idle: () => processor.idle(),
    close() {
      closing ??= close();
      return closing;
    },
  };
}
