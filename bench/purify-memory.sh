#!/bin/sh
# Peak RSS of `pbe purify` on 224x224x3 images (Fashion-MNIST resized, 3 channels) with a narrow mobilenet-v2 and a
# short schedule, over 5,000 and 20,000 images: memory should not grow with the corpus (issue 15's target: <= 2 GiB,
# and the 20k peak at most 1.2x the 5k peak). Usage: sh bench/purify-memory.sh [WORKDIR] (after `npm run build`).
# Needs Debian's dataset-fashion-mnist. Prints one line per run; logs go to WORKDIR.
set -e
work=${1:-bench/out/purify-memory}
pbe="node dist/src/cli/main.js"
mkdir -p "$work"
if [ ! -f "$work/f224/train-000019.tar" ]; then
  [ -f "$work/fmnist/train-000000.tar" ] || $pbe data fashion-mnist --out "$work/fmnist" --quiet
  $pbe data convert --from "$work/fmnist/train-{000000..000019}.tar" --to "$work/f224/train" --shape 224x224x3 \
    --image-size-policy resize --shard-size 1000 --quiet
fi
node --input-type=module -e "
  import { buildModel } from './dist/src/models/zoo.js';
  import { saveModel } from './dist/src/models/io.js';
  await saveModel(buildModel('mobilenet-v2', { inputShape: [224, 224, 3], numClasses: 10, width: 0.35, seed: 1 }), '$work/model');
"
cat > "$work/short.json" <<'JSON'
{ "batchSize": 32, "initialFraction": 0.05, "keepRatio": [0.1],
  "rounds": [ { "epochs": 1, "adversarial": { "epochs": 1, "share": 1, "maxBatches": null } },
              { "epochs": 1, "adversarial": { "epochs": 1, "share": 1, "maxBatches": 4 } } ],
  "pgd": { "eps": 0.05, "steps": 3 }, "optimizer": { "lr": 0.01 } }
JSON
for shards in 000004 000019; do
  n=$(( (1${shards} - 1000000 + 1) * 1000 ))
  rm -rf "$work/run-$n"
  /usr/bin/time -f "%M %e" -o "$work/time-$n" $pbe purify --model "$work/model" --data "$work/f224/train-{000000..$shards}.tar" \
    --out "$work/run-$n" --config "$work/short.json" --log-format json > "$work/log-$n" 2>&1
  read rss secs < "$work/time-$n"
  echo "purify 224x224x3 mobilenet-v2 w0.35, $n images: peak RSS $((rss / 1024)) MiB, $secs s"
done
