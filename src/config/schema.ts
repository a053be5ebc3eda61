import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The package's own config/ folder (src/config and dist/config are both two levels down). */
const PACKAGE_CONFIG = fileURLToPath(new URL('../../config/', import.meta.url));

/**
 * A number that may arrive as a string (environment variables and flags are strings). Only
 * strings are converted: a YAML `null`, `true` or empty value stays what it is and fails
 * validation, instead of z.coerce's silent `Number(null) = 0` (which turned `port:` into a
 * random port).
 */
function num<T extends z.ZodTypeAny>(schema: T): z.ZodEffects<T, z.output<T>, unknown> {
  return z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), schema);
}

/** A boolean that may arrive as the string "true" or "false" (environment variables and flags). */
const bool = z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());

/** Bytes of a batch message per token of batch_size × seq_len, generously (int32 token + columns). */
export const BYTES_PER_BATCH_TOKEN = 8;

/**
 * The deployment files ship "replace-me-…" where a bearer token or token key goes: a server given
 * one refuses to start rather than run with a secret everyone can read in the repository.
 */
export const PLACEHOLDER_PREFIX = 'replace-me';
const notPlaceholder = (v: string): boolean => !v.toLowerCase().startsWith(PLACEHOLDER_PREFIX);
const PLACEHOLDER_MESSAGE = `is the placeholder of the deployment files ("${PLACEHOLDER_PREFIX}…"): set a random secret (e.g. \`openssl rand -hex 24\`)`;

/**
 * The server configuration. Every key has a documented default; config/default.yaml spells
 * them out. Unknown keys are errors (strict objects), so a typo never silently does nothing.
 */
export const configSchema = z
  .object({
    server: z
      .object({
        /** Interface of the gRPC port; 0.0.0.0 in containers (the HTTP port has http_host). */
        host: z.string().min(1).default('127.0.0.1'),
        /** gRPC port; 0 picks a free one (printed at start-up). */
        port: num(z.number().int().min(0).max(65535)).default(50051),
        /** HTTP port for /metrics, /healthz and the status page; 0 picks a free one, -1 disables. */
        http_port: num(z.number().int().min(-1).max(65535)).default(9464),
        /** Interface of the HTTP port, apart from the gRPC one: /metrics and /status.json show every stream's spec. */
        http_host: z.string().min(1).default('127.0.0.1'),
        /** Require a bearer token of server.auth_tokens on /metrics and /status.json (/healthz and the page stay open). */
        http_auth: bool.default(false),
        /** Largest gRPC message either way, in bytes. */
        max_message_bytes: num(z.number().int().positive()).default(64 << 20),
        /** Concurrent StreamBatches calls before RESOURCE_EXHAUSTED. */
        max_streams: num(z.number().int().positive()).default(256),
        /**
         * Open gRPC connections at most; at the cap a new one displaces the oldest still in its
         * handshake, and is closed itself when none is (counted by reason in /metrics).
         */
        max_connections: num(z.number().int().positive()).default(1024),
        /** A gRPC connection must finish TLS (if any) and send the HTTP/2 preface within this long, or is closed. */
        handshake_timeout_ms: num(z.number().int().positive()).default(10000),
        /** Open grpc.health.v1 Watch calls at most, server-wide (RESOURCE_EXHAUSTED beyond). */
        max_health_watches: num(z.number().int().positive()).default(256),
        /** Largest batch_size × seq_len a stream may ask for (INVALID_ARGUMENT naming batch_size). */
        max_batch_tokens: num(z.number().int().positive()).default(1 << 20),
        /** Largest seq_len a stream may ask for. */
        max_seq_len: num(z.number().int().positive()).default(131072),
        /** Largest world_size a stream may ask for (each step plans world_size × batch_size rows). */
        max_world_size: num(z.number().int().positive()).default(65536),
        /**
         * Largest world_size × batch_size × seq_len of one global step (RESOURCE_EXHAUSTED naming it):
         * every rank's rows of a step are planned together, so this bounds a step's work and memory.
         */
        max_step_tokens: num(z.number().int().positive()).default(1 << 28),
        /** Most selectors in one mixture or held-out set (RESOURCE_EXHAUSTED naming it). */
        max_selectors: num(z.number().int().positive()).default(1024),
        /** Largest request message in bytes (a spec, a resume token, an update). */
        max_request_bytes: num(z.number().int().positive()).default(4 << 20),
        /** A stream that sends no first message within this many milliseconds is closed (DEADLINE_EXCEEDED). */
        first_message_timeout_ms: num(z.number().int().positive()).default(30000),
        /** Per stream: batches built but not yet handed to the socket (counting grpc-js's own queue). */
        stream_buffer_batches: num(z.number().int().positive()).default(2),
        /** Per stream: bytes built but not yet handed to the socket (one batch always may be). */
        stream_buffer_bytes: num(z.number().int().positive()).default(16 << 20),
        /** Server-wide: bytes built but not yet handed to the socket; streams wait for room beyond it. */
        send_budget_bytes: num(z.number().int().positive()).default(256 << 20),
        /**
         * Server-wide: planning memory of the open streams, each charged an estimate from its spec
         * at open (src/stream/plan-memory.ts); a stream beyond it is refused (RESOURCE_EXHAUSTED).
         */
        plan_budget_bytes: num(z.number().int().positive()).default(1 << 30),
        /**
         * Build worker threads (`serve --workers N`, docs/performance.md): 0 builds every batch on the
         * server's own thread; N ≥ 1 builds the batches of different streams on N threads (each opens
         * the index, with its own index.cache_bytes page cache) while the server thread only sends.
         */
        workers: num(z.number().int().min(0).max(256)).default(0),
        /** Mixture updates per stream per second before RESOURCE_EXHAUSTED. */
        max_updates_per_second: num(z.number().positive()).default(200),
        /** On SIGTERM, how long to wait for in-flight batches before closing anyway. */
        shutdown_grace_ms: num(z.number().int().min(0)).default(10000),
        /** Bearer tokens accepted (empty = no authentication); FLANSTREAM_SERVER_AUTH_TOKENS=a,b. */
        auth_tokens: z.array(z.string().min(8).refine(notPlaceholder, PLACEHOLDER_MESSAGE)).default([]),
        /**
         * HMAC-SHA256 key of resume tokens, the same on every replica ('' = tokens checksummed,
         * not signed); FLANSTREAM_SERVER_TOKEN_KEY. With a key, a token not signed with it is refused.
         */
        token_key: z
          .string()
          .refine((k) => k === '' || k.length >= 16, 'use at least 16 characters (or "" for unsigned tokens)')
          .refine(notPlaceholder, PLACEHOLDER_MESSAGE)
          .default(''),
        /**
         * HMAC keys of resume tokens: the first signs, every one verifies (rotation: put the new key
         * first, drop the old one once no checkpoint needs it); FLANSTREAM_SERVER_TOKEN_KEYS=new,old.
         * `token_key: K` is shorthand for `token_keys: [K]`; set one or the other.
         */
        token_keys: z.array(z.string().min(16, 'use at least 16 characters').refine(notPlaceholder, PLACEHOLDER_MESSAGE)).default([]),
        tls: z
          .object({
            /** PEM certificate and key paths; both empty = plaintext. */
            cert: z.string().default(''),
            key: z.string().default(''),
          })
          .strict()
          // One without the other used to fall back to plaintext silently.
          .superRefine((tls, ctx) => {
            if ((tls.cert === '') !== (tls.key === '')) {
              ctx.addIssue({ code: z.ZodIssueCode.custom, path: [tls.cert === '' ? 'cert' : 'key'], message: 'set both server.tls.cert and server.tls.key, or neither' });
            }
          })
          .default({}),
      })
      .strict()
      // A limit that lets a stream ask for batches the transport would refuse to send mid-stream.
      .superRefine((s, ctx) => {
        if (s.max_batch_tokens * BYTES_PER_BATCH_TOKEN > s.max_message_bytes) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['max_message_bytes'],
            message: `${s.max_message_bytes} bytes cannot carry a batch of max_batch_tokens = ${s.max_batch_tokens} (needs ${s.max_batch_tokens * BYTES_PER_BATCH_TOKEN}); raise it or lower max_batch_tokens`,
          });
        }
        if (s.http_auth && s.auth_tokens.length === 0) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['http_auth'], message: 'needs server.auth_tokens (the bearer tokens it accepts)' });
        }
        if (s.token_key !== '' && s.token_keys.length > 0) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['token_keys'], message: 'set server.token_keys or its one-key shorthand server.token_key, not both' });
        }
      })
      .default({}),
    index: z
      .object({
        /** The compiled index to serve. */
        dir: z.string().min(1).default('.cache/sample-index'),
        /** Bytes of shard tables and token blocks kept in memory. */
        cache_bytes: num(z.number().int().positive()).default(512 << 20),
        /** Index reads in flight at once, per process reading the index: the pages of planned steps read ahead (local files on the libuv pool, ranged GETs on S3). */
        read_concurrency: num(z.number().int().min(1).max(1024)).default(16),
        /** Bytes of pages held for planned steps not built yet (read ahead, besides cache_bytes): a quarter for planning's record tables (never waits), the rest for batches (a step waits for room). */
        prefetch_bytes: num(z.number().int().positive()).default(64 << 20),
        /** Steps after the one being built whose pages a stream reads meanwhile (0: none): what they will likely read, held within planning's share of prefetch_bytes. */
        read_ahead_steps: num(z.number().int().min(0).max(64)).default(0),
      })
      .strict()
      .default({}),
    /** Object storage for `index.dir: s3://bucket/prefix`; unset keys come from the standard AWS environment (AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE…). */
    storage: z
      .object({
        s3: z
          .object({
            /** Endpoint URL of an S3-compatible store (MinIO, Ceph, R2, GCS interop); '' = AWS or AWS_ENDPOINT_URL. */
            endpoint: z.string().default(''),
            /** '' = AWS_REGION (or us-east-1). */
            region: z.string().default(''),
            /** Path-style addressing (endpoint/bucket/key); default: on when an endpoint is set. */
            force_path_style: z.boolean().optional(),
            /** Static credentials; '' = the standard chain (environment, profile, instance role). */
            access_key_id: z.string().default(''),
            secret_access_key: z.string().default(''),
            /** Attempts per request (exponential backoff) before the error is final. */
            max_attempts: num(z.number().int().min(1).max(20)).default(8),
            /** Ranged GETs read this many bytes at once; the next blocks of the object are prefetched. */
            block_bytes: num(z.number().int().min(4096)).default(256 << 10),
            read_ahead_blocks: num(z.number().int().min(0)).default(4),
            /** Prefetched and recent blocks kept (block_bytes each), besides the page cache. */
            cache_blocks: num(z.number().int().min(1)).default(64),
            /** Requests in flight at once to the store per process (ranged GETs of planned steps and of read-ahead, HEADs, listings); each attempt takes one, a retry's backoff none. */
            max_concurrency: num(z.number().int().min(1).max(1024)).default(64),
            /** A server looks this often whether the index it serves was republished (a HEAD of its manifest, never waited for); 0 = never. */
            manifest_check_ms: num(z.number().int().min(0)).default(5000),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    stream: z
      .object({
        /** Packing window in examples (best-fit candidates). */
        window: num(z.number().int().positive()).default(256),
        /** Examples longer than seq_len: drop or truncate (never inside an audio span). */
        overlong: z.enum(['drop', 'truncate']).default('drop'),
        /** Most turns in a multiturn conversation. */
        max_turns: num(z.number().int().min(1).max(64)).default(4),
        /** Train streams' record order within a task, for specs that give "" (see stream/shuffle-spec.ts). */
        shuffle: z.enum(['global', 'blocks']).default('blocks'),
        /** Blocks open at once under shuffle "blocks", for specs that give 0 (docs/performance.md, "Record order"). */
        shuffle_window: num(z.number().int().min(1).max(1 << 16)).default(64),
        /** Optional system prompt at the start of every segment. */
        system_prompt: z.string().default(''),
        /** Steps per block of the recent realized-share window in stats (share-window.ts). */
        share_window_steps: num(z.number().int().min(1).max(1_000_000_000)).default(100),
        /** Bytes the caches keyed by client choices (held-out sets, their guards, train sizes per seq_len, servability) may hold together. */
        catalog_cache_bytes: num(z.number().int().min(1 << 16)).default(256 << 20),
      })
      .strict()
      .default({}),
    /** Directories of named mixtures and held-out sets (*.yaml, the file name is the name); default: the package's config/. */
    mixtures_dir: z.string().min(1).default(`${PACKAGE_CONFIG}mixtures`),
    heldout_dir: z.string().min(1).default(`${PACKAGE_CONFIG}heldout`),
    /** The held-out set of streams that name none. */
    default_heldout: z.string().min(1).default('unseen-flag'),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/** A named mixture file (config/mixtures/*.yaml). */
export const mixtureFileSchema = z
  .object({
    description: z.string().optional(),
    weights: z.record(z.number().nonnegative()).default({}),
    within: z.enum(['proportional', 'uniform', 'temperature']).default('proportional'),
    temperature: z.number().positive().default(1),
    cap: z.number().int().nonnegative().default(0),
  })
  .strict();

/** A named held-out set file (config/heldout/*.yaml). */
export const heldoutFileSchema = z
  .object({
    description: z.string().optional(),
    tasks: z.array(z.string()).default([]),
    /** Source dataset folders (NN_Dataset): every record of them is held out, whatever its task. */
    datasets: z.array(z.string().min(1)).default([]),
    unseen_flag: z.boolean().default(false),
    exclude_shared_audio: z.boolean().default(false),
    /** N > 0: drop train records sharing an N-gram of normalized words with a held-out record (13 is usual). */
    exclude_overlapping_text: z.number().int().min(0).max(64).default(0),
    scope: z.enum(['all', 'test']).default('all'),
  })
  .strict();
