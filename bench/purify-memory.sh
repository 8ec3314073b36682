#!/bin/sh
# Peak RSS of `pbe purify` on 224x224x3 images (Fashion-MNIST resized, 3 channels) with a narrow model and a
# minimal schedule, over several corpus sizes: memory should not grow with the corpus (issue 15's target: <= 2 GiB,
# and the 20k peak at most 1.2x the 5k peak).
# Usage: sh bench/purify-memory.sh [WORKDIR [MODEL [SIZES...]]] (after `npm run build`); MODEL: mobilenet-v2 (width
# 0.35, default) or resnet18 (width 0.25); SIZES: numbers of images, multiples of 1000 up to 60000 (default 5000 20000).
# Needs Debian's dataset-fashion-mnist. Prints one line per run (peak RSS from /usr/bin/time -v); logs go to WORKDIR.
# The schedule (short.json): one round of one epoch with 2 adversarial batches, a fixed eps, no trigger inversion,
# a 64-sample probe: every pass over the data (reference, similarity) runs once, training is short. BATCH=n sets
# the batch size (default 32): training memory grows with it (see the README's "Memory").
set -e
work=${1:-bench/out/purify-memory}
arch=${2:-mobilenet-v2}
shift 2 2>/dev/null || shift $#
sizes=${*:-5000 20000}
pbe="node dist/src/cli/main.js"
mkdir -p "$work/f224"
[ -f "$work/fmnist/complete" ] || $pbe data fashion-mnist --out "$work/fmnist" --quiet
max=0; for n in $sizes; do [ "$n" -gt "$max" ] && max=$n; done
# Fashion-MNIST's train shards hold 5,000 images each; converted shard b<i>-00000<j>.tar holds images 5000*i+1000*j...
i=0
while [ $((i * 5000)) -lt "$max" ]; do
  src=$(printf '%s/fmnist/train-%06d.tar' "$work" "$i")
  [ -f "$work/f224/b$i-000004.tar" ] || $pbe data convert --from "$src" --to "$work/f224/b$i" --shape 224x224x3 \
    --image-size-policy resize --shard-size 1000 --overwrite --quiet
  i=$((i + 1))
done
if [ "$arch" = resnet18 ]; then width=0.25; else width=0.35; fi
node --input-type=module -e "
  import { buildModel } from './dist/src/models/zoo.js';
  import { saveModel } from './dist/src/models/io.js';
  await saveModel(buildModel('$arch', { inputShape: [224, 224, 3], numClasses: 10, width: $width, seed: 1 }), '$work/model-$arch');
"
batch=${BATCH:-32}
cat > "$work/short.json" <<JSON
{ "batchSize": $batch, "initialFraction": 0.05, "keepRatio": [],
  "rounds": [ { "epochs": 1, "adversarial": { "epochs": 1, "share": 1, "maxBatches": 2 } } ],
  "pgd": { "eps": 0.05, "steps": 3 }, "optimizer": { "lr": 0.01 },
  "probe": { "samples": 64 }, "inversion": { "enabled": false } }
JSON
for n in $sizes; do
  shards=""
  k=0
  while [ $((k * 1000)) -lt "$n" ]; do shards="$shards $(printf '%s/f224/b%d-%06d.tar' "$work" $((k / 5)) $((k % 5)))"; k=$((k + 1)); done
  run="$work/run-$arch-$n-b$batch"
  rm -rf "$run"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  # shellcheck disable=SC2086
  /usr/bin/time -v -o "$work/time-$arch-$n-b$batch" $pbe purify --model "$work/model-$arch" --data $shards \
    --out "$run" --config "$work/short.json" --log-format json > "$work/log-$arch-$n-b$batch" 2>&1 || echo "purify failed: see $work/log-$arch-$n-b$batch"
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time-$arch-$n-b$batch")
  secs=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time-$arch-$n-b$batch")
  echo "purify 224x224x3 $arch w$width, batch $batch, $n images: peak RSS $((rss / 1024)) MiB, $secs wall, load average at start $load"
done
