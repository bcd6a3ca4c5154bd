# The mero-tee node image: one GCP image per profile, built on the pinned GCP TDX base image
# (SPEC §3). `mero-release build-node-image --provider gcp` (and `dagger call build-node-image`,
# which runs it in the pinned hashicorp/packer image) runs `packer init` and `packer build` here
# with the -var values below, then reads packer-manifest.json: each build's artifact_id is the
# image the release measures on an ephemeral TDX Confidential VM, and its custom_data records
# the profile and the base image (the SBOM's DESCENDANT_OF) and names the two files provision.sh
# recorded on the build VM and the template downloaded beside the manifest: the installed
# Debian packages (os-packages-PROFILE.tsv) and the OS, kernel and firmware identity
# (image-identity-PROFILE.env), from which the SBOM lists the image's software.
#
# Every image runs mero-tee-agent at boot: the file mero-tee-agent beside this template, a static
# linux/amd64 build of cmd/mero-tee-agent (copied here by `build-node-image --agent-binary`).
#
# RTMR0 (firmware) and RTMR1 (kernel) follow the base image: a new source_image means a new
# release with new measurements. RTMR2 follows the kernel command line, which differs per
# profile (provision.sh), so the three profiles measure differently.

packer {
  required_version = ">= 1.11.0"
  required_plugins {
    googlecompute = {
      source  = "github.com/hashicorp/googlecompute"
      version = "= 1.1.6"
    }
  }
}

variable "version" {
  type        = string
  description = "The node-image release version (MERO_TEE_VERSION), e.g. 1.3.0 or 1.3.0-rc.1."
}

variable "project_id" {
  type        = string
  description = "The GCP project the images are created in (GCP_PROJECT_ID)."
}

variable "zone" {
  type        = string
  description = "A TDX-capable zone for the build VM (GCP_ZONE)."
  default     = "us-central1-a"
}

variable "image_family" {
  type        = string
  description = "Image family prefix (GCP_IMAGE_FAMILY): images go to <family>-<profile>."
  default     = "mero-tee"
}

variable "source_image_family" {
  type    = string
  default = "ubuntu-2404-tdx"
}

variable "source_image_project" {
  type    = string
  default = "confidential-vm-images"
}

# Pinned: the base image is never resolved from the family at build time.
variable "source_image" {
  type    = string
  default = "ubuntu-2404-tdx-v20250101"
}

locals {
  # GCP image names: lower-case letters, digits and dashes.
  image_version = lower(replace(replace(var.version, ".", "-"), "+", "-"))
  labels = {
    "mero-tee-version" = local.image_version
    "base-image"       = var.source_image
  }
}

source "googlecompute" "node" {
  project_id              = var.project_id
  zone                    = var.zone
  source_image            = var.source_image
  source_image_project_id = [var.source_image_project]
  machine_type            = "c3-standard-4"
  disk_size               = 20
  disk_type               = "pd-balanced"
  ssh_username            = "packer"
  use_os_login            = false
  # The image boots as a TDX Confidential VM (confidentialInstanceType TDX).
  image_guest_os_features = ["UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC", "TDX_CAPABLE"]
  image_labels            = local.labels
  image_description       = "mero-tee node image ${var.version} on ${var.source_image}"
}

build {
  source "source.googlecompute.node" {
    name         = "debug"
    image_name   = "mero-tee-${local.image_version}-debug"
    image_family = "${var.image_family}-debug"
  }
  source "source.googlecompute.node" {
    name         = "debug-read-only"
    image_name   = "mero-tee-${local.image_version}-debug-read-only"
    image_family = "${var.image_family}-debug-read-only"
  }
  source "source.googlecompute.node" {
    name         = "locked-read-only"
    image_name   = "mero-tee-${local.image_version}-locked-read-only"
    image_family = "${var.image_family}-locked-read-only"
  }

  provisioner "file" {
    sources     = ["${path.root}/mero-tee-agent", "${path.root}/mero-tee-agent.service"]
    destination = "/tmp/"
  }

  provisioner "shell" {
    script           = "${path.root}/provision.sh"
    execute_command  = "sudo -E sh '{{ .Path }}'"
    environment_vars = ["MERO_PROFILE=${source.name}", "MERO_TEE_VERSION=${var.version}"]
  }

  # The record provision.sh wrote, downloaded beside the manifest, then removed from the image.
  provisioner "file" {
    direction   = "download"
    source      = "/var/tmp/mero-record/packages.tsv"
    destination = "os-packages-${source.name}.tsv"
  }
  provisioner "file" {
    direction   = "download"
    source      = "/var/tmp/mero-record/identity.env"
    destination = "image-identity-${source.name}.env"
  }
  provisioner "shell" {
    inline          = ["rm -rf /var/tmp/mero-record", "sync"]
    execute_command = "sudo sh -c '{{ .Vars }} {{ .Path }}'"
  }

  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
    custom_data = {
      profile              = source.name
      version              = var.version
      source_image         = var.source_image
      source_image_family  = var.source_image_family
      source_image_project = var.source_image_project
      packages_file        = "os-packages-${source.name}.tsv"
      identity_file        = "image-identity-${source.name}.env"
    }
  }
}
