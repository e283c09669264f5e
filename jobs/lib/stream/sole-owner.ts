/**
 * A kafkajs partition assigner that gives every partition of the subscribed topics to ONE member
 * of the group, and nothing to the others. Sticky: the member that holds them now (it says so in
 * its join metadata) keeps them when members come and go; without a holder, the first member by
 * id takes them. Kafka's group membership then elects that one member and replaces it when it
 * dies (its session times out) or leaves.
 *
 * Used where one process must see everything: a DuckDB consumer (one writer per stream file: a
 * second member gets nothing and stops with a clear error) and the availability role of the
 * BigQuery consumers (availability-role.ts).
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

const NAME = 'StoreEtlSoleOwner';
const HOLDS = Buffer.from([1]);
const FREE = Buffer.from([0]);

/** `holds()`: whether this member holds the partitions now (sent with every join). */
export function soleOwnerAssigner(holds: () => boolean): PartitionAssigner {
  return ({ cluster }) => ({
    name: NAME,
    version: 0,
    async assign({ members, topics }) {
      const sorted = [...members].sort((a, b) => a.memberId.localeCompare(b.memberId));
      const holder =
        sorted.find((m) => AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData?.equals(HOLDS)) ?? sorted[0];
      const all = Object.fromEntries(topics.map((t) => [t, cluster.findTopicPartitionMetadata(t).map((p) => p.partitionId)]));
      return members.map((m) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: m === holder ? all : {}, userData: FREE }),
      }));
    },
    protocol({ topics }) {
      return { name: NAME, metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: holds() ? HOLDS : FREE }) };
    },
  });
}
