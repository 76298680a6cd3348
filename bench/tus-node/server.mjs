// The official tus Node server on S3, configured as its README shows, for bench/tus.py.
// Environment: PORT, S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY, PART_SIZE.
import { S3Store } from '@tus/s3-store';
import { Server } from '@tus/server';

const env = process.env;
const datastore = new S3Store({
  partSize: Number(env.PART_SIZE || 8 * 1024 * 1024),
  // SeaweedFS does not keep object tags; the store only uses them to mark incomplete parts for expiry.
  useTags: false,
  s3ClientConfig: {
    bucket: env.S3_BUCKET,
    region: 'us-east-1',
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: env.S3_ACCESS_KEY, secretAccessKey: env.S3_SECRET_KEY },
  },
});
const server = new Server({ path: '/files', datastore });
server.listen({ host: '127.0.0.1', port: Number(env.PORT) }, () => {
  process.stdout.write(`listening on 127.0.0.1:${env.PORT}\n`);
});
