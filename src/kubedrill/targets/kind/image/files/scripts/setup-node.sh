#!/bin/bash
# Runs once inside the image build container (never in a node): lays kubedrill's files over the
# Debian root file system, trims systemd to what a node runs, and preloads the images into
# containerd. $1: the directory the build context is mounted on.
set -o errexit -o nounset -o pipefail
ctx=$1

cp -a "${ctx}/rootfs/." /

# systemd as a container's init: nothing a VM would start (getty, udev, timers, fsck...).
rm -f /lib/systemd/system/multi-user.target.wants/* \
  /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* \
  /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* \
  /lib/systemd/system/basic.target.wants/* \
  /lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service
# systemd-sysctl would write Debian's defaults (kernel.pid_max, fs.protected_*) into the VM's
# kernel: those settings are not namespaced. Masked, and the defaults removed too.
rm -f /usr/lib/sysctl.d/*.conf
systemctl mask --quiet systemd-sysctl.service systemd-binfmt.service
systemctl enable --quiet containerd.service kubelet.service kubedrill-cni.service

mkdir -p /etc/kubernetes/manifests /etc/cni/net.d /opt/cni /var/lib/kubelet
ln -sfn /usr/lib/cni /opt/cni/bin
chmod 0755 /kind /kind/bin /kind/bin/* /usr/local/bin/entrypoint

# Preload: the images kubeadm asks for, imported as kind does (unpacked by the CRI on first use),
# their layers gzip-compressed in the content store (podman saves them uncompressed).
containerd >/tmp/containerd.log 2>&1 &
pid=$!
for _ in $(seq 1 50); do
  [[ -S /run/containerd/containerd.sock ]] && ctr version >/dev/null 2>&1 && break
  sleep 0.2
done
ctr --namespace=k8s.io images import --all-platforms --digests --no-unpack --compress-blobs \
  "${ctx}/images.tar" >/dev/null
# --compress-blobs leaves the uncompressed layers in the content store until containerd's garbage
# collector removes them, which may not have happened when containerd is stopped below (and then
# they would ship). Removing an image with --sync runs a full collection and waits for it.
first=$(ctr --namespace=k8s.io images list -q | head -n 1)
ctr --namespace=k8s.io images tag "${first}" kubedrill.invalid/gc:now >/dev/null
ctr --namespace=k8s.io images rm --sync kubedrill.invalid/gc:now >/dev/null
blobs=/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256
on_disk=$(ls "${blobs}" | wc -l)
known=$(ctr --namespace=k8s.io content ls -q | wc -l)
if ((on_disk > known)); then
  echo "content store holds ${on_disk} blobs, containerd knows ${known}" >&2
  exit 1
fi
ctr --namespace=k8s.io images list -q
kill "${pid}"
wait "${pid}" || true
rm -rf /run/containerd /tmp/containerd.log /var/log/* /var/cache/apt/* /var/lib/apt/lists/*
