/** A CPU profile of this process, written where a benchmark asks (`--cpu-profile FILE`). */
import inspector from 'node:inspector';

/** The inspector's sampling profiler on this process (the consumer runs in it). */
export async function startProfile(): Promise<{ stop: () => Promise<object> }> {
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<{ profile?: object }>((resolve, reject) =>
      session.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r as { profile?: object }))),
    );
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 500 });
  await post('Profiler.start');
  return {
    stop: async () => {
      const { profile } = await post('Profiler.stop');
      session.disconnect();
      return profile!;
    },
  };
}
