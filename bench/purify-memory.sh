#!/bin/sh
# Peak RSS of `pbe purify` on 224x224x3 images (Fashion-MNIST resized, 3 channels) with a narrow model and a
# short schedule, over several corpus sizes: memory should not grow with the corpus (issue 15's target: <= 2 GiB,
# and the 20k peak at most 1.2x the 5k peak).
# Usage: sh bench/purify-memory.sh [WORKDIR [MODEL [SIZES...]]] (after `npm run build`); MODEL: mobilenet-v2 (width
# 0.35, default) or resnet18 (width 0.25); SIZES: numbers of images, multiples of 1000 up to 60000 (default 5000 20000).
# Needs Debian's dataset-fashion-mnist. Prints one line per run (peak RSS from /usr/bin/time -v: the whole process,
# its worker threads included); logs go to WORKDIR, with the process's RSS and high-water mark every 5 s beside the
# run's last log line (rss-*.tsv: seconds, VmHWM and VmRSS in MiB, message), to see which phase sets the peak.
# The schedule (short.json), the shortest that runs every pass: the reference pass, the eps probe (32 samples, one
# fixed eps, PGD 3 steps), trigger inversion (2 Adam steps per class on 8 probe images, 2 refining steps), one round
# of one epoch on the initial 2% with 2 adversarial batches, the similarity pass. BATCH=n sets the training batch size
# (default 32): training memory grows with it (see the README's "Memory").
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
{ "batchSize": $batch, "initialFraction": 0.02, "keepRatio": [],
  "rounds": [ { "epochs": 1, "adversarial": { "epochs": 1, "share": 1, "maxBatches": 2 } } ],
  "pgd": { "eps": 0.05, "steps": 3 }, "optimizer": { "lr": 0.01 },
  "probe": { "samples": 32 }, "inversion": { "enabled": true, "steps": 2, "batchSize": 8, "refineSteps": 2 } }
JSON
for n in $sizes; do
  shards=""
  k=0
  while [ $((k * 1000)) -lt "$n" ]; do shards="$shards $(printf '%s/f224/b%d-%06d.tar' "$work" $((k / 5)) $((k % 5)))"; k=$((k + 1)); done
  run="$work/run-$arch-$n-b$batch"
  rm -rf "$run"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  log="$work/log-$arch-$n-b$batch"
  # shellcheck disable=SC2086
  /usr/bin/time -v -o "$work/time-$arch-$n-b$batch" $pbe purify --model "$work/model-$arch" --data $shards \
    --out "$run" --config "$work/short.json" --log-format json > "$log" 2>&1 &
  tpid=$!
  sleep 1
  pid=$(pgrep -P "$tpid" | head -1)
  printf 'seconds\thwm_mib\trss_mib\tlast_log\n' > "$work/rss-$arch-$n-b$batch.tsv"
  t=0
  while kill -0 "$pid" 2>/dev/null; do
    mem=$(awk '/^VmRSS|^VmHWM/ { printf "%d\t", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null)
    printf '%d\t%s%s\n' "$t" "$mem" "$(tail -1 "$log" | sed -n 's/.*"msg":"\([^"]\{0,100\}\).*/\1/p')" >> "$work/rss-$arch-$n-b$batch.tsv"
    sleep 5
    t=$((t + 5))
  done
  wait "$tpid" || echo "purify failed: see $log"
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time-$arch-$n-b$batch")
  secs=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time-$arch-$n-b$batch")
  echo "purify 224x224x3 $arch w$width, batch $batch, $n images: peak RSS $((rss / 1024)) MiB, $secs wall, load average at start $load"
done
