/* Prints the ABI's layouts and writes its golden byte vectors, from the C header itself.
 *   golden ring-layout        -> "version N" (VPIO_RING_VERSION) then "field offset size" lines
 *   golden capability-layout  -> "version N" (VPIO_CAP_VERSION) then "field offset size" lines
 *   golden vectors DIR        -> DIR/header.bin and DIR/record-{intent,intent-bus,state,heartbeat,error}.bin
 * Run by Tests/VPIOProtocolTests, which compares both with protocol/golden/. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "vpio_ring.h"

#define F(type, field) printf("%s.%s %zu %zu\n", #type, #field, offsetof(struct type, field), sizeof(((struct type *)0)->field))

static void ring_layout(void)
{
	printf("version %d\n", VPIO_RING_VERSION);
	F(vpio_ring_header, magic); F(vpio_ring_header, version); F(vpio_ring_header, record_size);
	F(vpio_ring_header, capacity); F(vpio_ring_header, agent_pid); F(vpio_ring_header, head);
	F(vpio_ring_header, reserved_consumer); F(vpio_ring_header, accesses_seen); F(vpio_ring_header, intents_written);
	F(vpio_ring_header, unseen_sites);
	F(vpio_record, seq); F(vpio_record, type); F(vpio_record, flags); F(vpio_record, site); F(vpio_record, time_ns);
	F(vpio_record, intent.kind); F(vpio_record, intent.command); F(vpio_record, intent.start);
	F(vpio_record, intent.count); F(vpio_record, intent.intent_index); F(vpio_record, intent.access_index);
	F(vpio_record, state.accesses); F(vpio_record, state.dma_intents); F(vpio_record, state.reusable);
	F(vpio_record, state.unsure); F(vpio_record, state.events_lost);
	F(vpio_record, heartbeat.uptime_ns); F(vpio_record, heartbeat.accesses);
	F(vpio_record, error.code); F(vpio_record, error.detail); F(vpio_record, error.text);
	F(vpio_ring, records);
	printf("sizeof.vpio_ring_header %zu\nsizeof.vpio_record %zu\nsizeof.vpio_ring %zu\n",
	       sizeof(struct vpio_ring_header), sizeof(struct vpio_record), sizeof(struct vpio_ring));
}

static void capability_layout(void)
{
	printf("version %d\n", VPIO_CAP_VERSION);
	F(vpio_capability, cap_id); F(vpio_capability, next); F(vpio_capability, length); F(vpio_capability, version);
	F(vpio_capability, status); F(vpio_capability, command); F(vpio_capability, page_count);
	F(vpio_capability, pages); F(vpio_capability, violations); F(vpio_capability, last_error);
	F(vpio_capability, anomalies);
	printf("sizeof.vpio_capability %zu\n", sizeof(struct vpio_capability));
}

static int dump(const char *dir, const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n) { perror(path); return 1; }
	return fclose(f) != 0;
}

static int vectors(const char *dir)
{
	struct vpio_ring_header h;
	memset(&h, 0, sizeof h);
	h.magic = VPIO_RING_MAGIC; h.version = VPIO_RING_VERSION; h.record_size = VPIO_RECORD_SIZE;
	h.capacity = VPIO_RING_CAPACITY; h.agent_pid = 0x1234; h.head = 0x0102030405060708ull;
	h.accesses_seen = 300000; h.intents_written = 42; h.unseen_sites = 3;

	struct vpio_record r[5];
	memset(r, 0, sizeof r);
	r[0].seq = 1; r[0].type = VPIO_REC_DMA_INTENT; r[0].site = 17; r[0].time_ns = 123456789;
	r[0].intent.kind = VPIO_DMA_REMOTE_READ; r[0].intent.command = 0x0a; r[0].intent.start = 0x4c00;
	r[0].intent.count = 1514; r[0].intent.intent_index = 0; r[0].intent.access_index = 99;
	r[1].seq = 2; r[1].type = VPIO_REC_STATE; r[1].time_ns = 5;
	r[1].state.accesses = 1000; r[1].state.dma_intents = 10; r[1].state.reusable = 1; r[1].state.unsure = 0;
	r[1].state.events_lost = 2;
	r[2].seq = 3; r[2].type = VPIO_REC_HEARTBEAT; r[2].heartbeat.uptime_ns = 2000000000ull; r[2].heartbeat.accesses = 77;
	r[3].seq = 4; r[3].type = VPIO_REC_ERROR; r[3].error.code = 5; r[3].error.detail = 6;
	strcpy(r[3].error.text, "site refused");
	r[4].seq = 5; r[4].type = VPIO_REC_DMA_INTENT; r[4].site = 41; r[4].time_ns = 987654321;
	r[4].intent.kind = VPIO_DMA_BUS_TRANSMIT; r[4].intent.command = 2; r[4].intent.start = 0x3f8a2000u;
	r[4].intent.count = 1514; r[4].intent.intent_index = 7; r[4].intent.access_index = 4242;
	return dump(dir, "header.bin", &h, sizeof h) || dump(dir, "record-intent.bin", &r[0], sizeof r[0]) ||
	       dump(dir, "record-state.bin", &r[1], sizeof r[1]) || dump(dir, "record-heartbeat.bin", &r[2], sizeof r[2]) ||
	       dump(dir, "record-error.bin", &r[3], sizeof r[3]) || dump(dir, "record-intent-bus.bin", &r[4], sizeof r[4]);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "ring-layout")) { ring_layout(); return 0; }
	if (argc == 2 && !strcmp(argv[1], "capability-layout")) { capability_layout(); return 0; }
	if (argc == 3 && !strcmp(argv[1], "vectors")) return vectors(argv[2]);
	fprintf(stderr, "usage: golden ring-layout | golden capability-layout | golden vectors DIR\n");
	return 2;
}
