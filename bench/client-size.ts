/**
 * The client's size limit: 6 KB min + gzip (level 9), dependencies and licence
 * comments included, bundled by `scripts/client-bundle.ts`. `npm test` fails
 * past it.
 */
export const CLIENT_SIZE_LIMIT_BYTES = 6 * 1024
