/**
 * Per-call work the AWS SDK repeats for nothing, taken out of a client's chain. Measured on a
 * PutItem loop (scripts/bench-sdk-call.ts): about 0.88× the CPU per call of the same client
 * without it. What it changes, and why each is safe for selo:
 *
 * - **Signer**: without a `signer` in its configuration, the SDK builds a new SigV4 signer for
 *   every request, copying the whole client configuration into it and resolving the region
 *   again. Here each auth scheme (name, signing name, signing region) gets the signer the SDK's
 *   own factory builds, once. The signer asks the credential provider on every request (rotated
 *   credentials are used), is given the signing date per request (clock-skew correction stands),
 *   and keeps derived keys in the signature-v4 module's cache, as before.
 * - **User agent**: the SDK recomputes its `User-Agent` (the platform, the runtime, escaping,
 *   feature flags) on every request. Here it is computed once per client from the SDK's own
 *   sections, `customUserAgent` and `userAgentAppId` (`AWS_SDK_UA_APP_ID`), with `app/selo` when
 *   no app id is set; the per-request feature flags (`m/…`, usage metrics for AWS) and a
 *   command's own additions are not sent.
 * - **Recursion detection**: sets `X-Amzn-Trace-Id` only inside AWS Lambda; selo runs on ECS.
 * - **SDK logger**: selo gives its clients no `logger`, so the step logged to nothing.
 */

/** The parts of an SDK v3 client this touches (every generated client has them). */
export interface LeanableClient {
  middlewareStack: { remove(name: string): boolean; add(...args: never[]): void };
  config: object;
}

interface BuildArgs {
  request: unknown;
}

/** The `add` of a middleware stack, as used here: one build-step middleware. */
interface BuildStepStack {
  add(middleware: (next: (args: BuildArgs) => Promise<unknown>) => (args: BuildArgs) => Promise<unknown>, options: { step: 'build'; name: string }): void;
}

type SignerFactory = (authScheme?: { name?: string; signingName?: string; signingRegion?: string }) => Promise<unknown>;
type UserAgentSections = readonly (readonly [string, string?])[];

/** The SDK steps removed by {@link leanClient}, by their names in the middleware stack. */
export const REMOVED_STEPS = ['getUserAgentMiddleware', 'recursionDetectionMiddleware', 'loggerMiddleware'] as const;

/** The name of the user-agent step {@link leanClient} adds. */
export const USER_AGENT_STEP = 'seloUserAgent';

/**
 * One user-agent token as the SDK writes it: `name/version`, or `prefix/name#version` for a
 * prefixed name (`api/dynamodb#3.1`, the API's name in lower case); each part of a name and the
 * version keep RFC 9110's token characters (the version `#` too), anything else becomes `-`.
 */
function token(name: string, version: string | undefined): string {
  const parts = name.split('/').map((part) => part.replace(/[^!$%&'*+\-.^_`|~\w]/gu, '-'));
  const versioned = version === undefined || version === '' ? '' : version.replace(/[^!$%&'*+\-.^_`|~\w#]/gu, '-');
  if (parts.length < 2) return versioned === '' ? (parts[0] ?? '') : `${parts[0] ?? ''}/${versioned}`;
  const [prefix = '', ...rest] = parts;
  const named = `${prefix}/${prefix === 'api' ? rest.join('/').toLowerCase() : rest.join('/')}`;
  return versioned === '' ? named : `${named}#${versioned}`;
}

/**
 * The `User-Agent` and `x-amz-user-agent` values of a client: the SDK's own sections, the app id
 * (`app/<id>`, `app/selo` when none is set) and the client's `customUserAgent` sections.
 */
export function userAgentHeaders(sections: UserAgentSections, appId?: string, custom: UserAgentSections = []): { userAgent: string; amzUserAgent: string } {
  const own = sections.map(([name, version]) => token(name, version));
  const extra = custom.map(([name, version]) => token(name, version));
  const app = token('app', appId === undefined || appId === '' ? 'selo' : appId);
  return { userAgent: [...own, app, ...extra].join(' '), amzUserAgent: [...own.filter((t) => t.startsWith('aws-sdk-')), ...extra].join(' ') };
}

function isRequest(value: unknown): value is { headers: Record<string, string> } {
  return typeof value === 'object' && value !== null && typeof (value as { headers?: unknown }).headers === 'object';
}

/** The user-agent settings of a client's resolved configuration. */
interface UserAgentConfig {
  defaultUserAgentProvider?: () => Promise<UserAgentSections>;
  userAgentAppId?: () => Promise<string | undefined>;
  customUserAgent?: string | UserAgentSections;
}

/** Computes a client's user-agent headers once; its sections read from the SDK's own providers. */
async function clientUserAgent(config: UserAgentConfig): Promise<{ userAgent: string; amzUserAgent: string }> {
  const sections = (await config.defaultUserAgentProvider?.()) ?? [];
  const appId = await config.userAgentAppId?.();
  const custom = typeof config.customUserAgent === 'string' ? [[config.customUserAgent] as const] : (config.customUserAgent ?? []);
  return userAgentHeaders(sections, appId, custom);
}

/**
 * Takes the per-call work described above out of `client`'s chain; returns the client. A client
 * already made lean is returned as it is.
 */
export function leanClient<C extends LeanableClient>(client: C): C {
  const steps = (client.middlewareStack as unknown as { identify?: () => string[] }).identify?.() ?? [];
  if (steps.some((step) => step.startsWith(`${USER_AGENT_STEP} `))) return client;
  const config = client.config as { signer?: SignerFactory } & UserAgentConfig;
  const factory = config.signer;
  if (typeof factory === 'function') {
    const signers = new Map<string, Promise<unknown>>();
    config.signer = (authScheme) => {
      const key = `${authScheme?.name ?? ''}\u0000${authScheme?.signingName ?? ''}\u0000${authScheme?.signingRegion ?? ''}`;
      let signer = signers.get(key);
      if (signer === undefined) {
        signer = factory(authScheme);
        signers.set(key, signer);
        // A factory that failed (e.g. no region yet) is asked again next time.
        signer.catch(() => signers.delete(key));
      }
      return signer;
    };
  }
  for (const step of REMOVED_STEPS) client.middlewareStack.remove(step);
  let headers: Promise<{ userAgent: string; amzUserAgent: string }> | undefined;
  (client.middlewareStack as unknown as BuildStepStack).add(
    (next) => async (args) => {
      if (isRequest(args.request)) {
        // The SDK's sections cannot fail to be read in practice; if they do, the user agent is selo's alone.
        headers ??= clientUserAgent(config).catch(() => userAgentHeaders([]));
        const { userAgent, amzUserAgent } = await headers;
        args.request.headers['user-agent'] = userAgent;
        if (amzUserAgent !== '') args.request.headers['x-amz-user-agent'] = amzUserAgent;
      }
      return next(args);
    },
    { step: 'build', name: USER_AGENT_STEP },
  );
  return client;
}
