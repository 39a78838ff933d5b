/**
 * `GET /system/df` (Docker's SystemDiskUsage, `isula system df`): the images
 * with how many containers use each and the size they share with others,
 * the containers with their writable layers' sizes, the volumes with their
 * size and users, and an empty build cache (isula builds nothing).
 */
import type { ContainerManager } from '../container/manager.js';
import { listView } from '../container/view.js';
import { familiarDigest, listAll, type ImageSource } from './image-routes.js';
import type { ApiServer } from './server.js';
import { volumeView } from './volume-routes.js';

export function registerDiskUsageRoutes(api: ApiServer, images: ImageSource, containers: ContainerManager): void {
  api.route('GET', '/system/df', async ({ signal }) => {
    const records = containers.records();
    const listed = await listAll(images, signal);
    // A layer is counted once however many images hold it; an image without layer ids is one layer of its own.
    const layersOf = listed.map(({ img }) => [...new Map((img.layers ?? [{ id: `image:${img.id}`, sizeBytes: img.sizeBytes }]).map((l) => [l.id, l])).values()]);
    const holders = new Map<string, { size: number; images: number }>();
    for (const l of layersOf.flat()) {
      const h = holders.get(l.id) ?? { size: l.sizeBytes, images: 0 };
      h.images += 1;
      holders.set(l.id, h);
    }
    let layersSize = 0;
    for (const h of holders.values()) layersSize += h.size;
    const imageViews = listed.map(({ img }, i) => {
      const shared = (layersOf[i] ?? []).reduce((sum, l) => sum + ((holders.get(l.id)?.images ?? 0) > 1 ? l.sizeBytes : 0), 0);
      const none = img.repoTags.length === 0 && img.repoDigests.length === 0;
      return {
        Id: img.id,
        ParentId: '',
        RepoTags: none ? ['<none>:<none>'] : img.repoTags,
        RepoDigests: none ? ['<none>@<none>'] : img.repoDigests.map(familiarDigest),
        Created: Math.floor(img.created.getTime() / 1000),
        Size: img.sizeBytes,
        VirtualSize: img.sizeBytes,
        SharedSize: shared,
        Labels: {},
        Containers: records.filter((r) => r.Image === img.id).length,
      };
    });
    const now = Date.now();
    const containerViews = await Promise.all(records.map(async (r) => ({ ...listView(r, now), ...(await containers.sizes(r, signal)) })));
    const volumeViews = await Promise.all(containers.volumes.list().map(async (v) => ({
      ...volumeView(containers, v),
      UsageData: { Size: await containers.volumes.size(v.Name).catch(() => -1), RefCount: containers.volumeUsers(v.Name).length },
    })));
    return { LayersSize: layersSize, Images: imageViews, Containers: containerViews, Volumes: volumeViews, BuildCache: [], BuilderSize: 0 };
  });

  // isula has no build cache: pruning it removes nothing (docker's `system prune` asks for it).
  api.route('POST', '/build/prune', async () => ({ CachesDeleted: [], SpaceReclaimed: 0 }));
}
