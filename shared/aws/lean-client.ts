/**
 * Per-call work the AWS SDK repeats for nothing, taken out of a client's chain. Measured on a
 * PutItem loop (scripts/bench-sdk-call.ts): about 0.9× the CPU per call of the same client
 * without it. What it changes, and why each is safe for selo:
 *
 * - **Signer**: without a `signer` in its configuration, the SDK builds a new SigV4 signer for
 *   every request (copying the whole client configuration into it), and with it loses the
 *   signer's cache of derived signing keys: five HMACs per request instead of one. Here each
 *   auth scheme (name, signing name, signing region) gets the signer the SDK's own factory builds,
 *   once. The signer asks the credential provider on every request, so rotated credentials are
 *   still used; its key cache is keyed by credentials, date, region and service.
 * - **User agent**: the SDK recomputes its `User-Agent` (the platform, the runtime, escaping,
 *   feature flags) on every request. Here it is computed once per client from the SDK's own
 *   sections, with `app/selo`; the per-request feature flags (`m/…`, usage metrics for AWS) are
 *   not sent.
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
 * prefixed name (`api/dynamodb#3.1`, the API's name in lower case), with any character outside
 * RFC 9110's token set replaced by `-`.
 */
function token(name: string, version: string | undefined): string {
  const clean = (text: string): string => text.replace(/[^!$%&'*+\-.^_`|~0-9A-Za-z]/gu, '-');
  const slash = name.indexOf('/');
  const versioned = version === undefined || version === '' ? '' : clean(version);
  if (slash < 0) return versioned === '' ? clean(name) : `${clean(name)}/${versioned}`;
  const prefix = clean(name.slice(0, slash));
  const rest = clean(name.slice(slash + 1));
  const named = `${prefix}/${prefix === 'api' ? rest.toLowerCase() : rest}`;
  return versioned === '' ? named : `${named}#${versioned}`;
}

/** The `User-Agent` and `x-amz-user-agent` values of a client, from the SDK's own sections. */
export function userAgentHeaders(sections: UserAgentSections): { userAgent: string; amzUserAgent: string } {
  const tokens = sections.map(([name, version]) => token(name, version));
  return { userAgent: [...tokens, 'app/selo'].join(' '), amzUserAgent: tokens.filter((t) => t.startsWith('aws-sdk-')).join(' ') };
}

function isRequest(value: unknown): value is { headers: Record<string, string> } {
  return typeof value === 'object' && value !== null && typeof (value as { headers?: unknown }).headers === 'object';
}

/** Takes the per-call work described above out of `client`'s chain; returns the client. */
export function leanClient<C extends LeanableClient>(client: C): C {
  const config = client.config as { signer?: SignerFactory; defaultUserAgentProvider?: () => Promise<UserAgentSections> };
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
  const sections = config.defaultUserAgentProvider;
  let headers: Promise<{ userAgent: string; amzUserAgent: string }> | undefined;
  (client.middlewareStack as unknown as BuildStepStack).add(
    (next) => async (args) => {
      if (isRequest(args.request)) {
        // The SDK's sections cannot fail to be read in practice; if they do, the user agent is selo's alone.
        headers ??= (sections === undefined ? Promise.resolve([]) : sections()).then(userAgentHeaders, () => userAgentHeaders([]));
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
