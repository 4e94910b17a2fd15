// An EC2 API error as the stand-in raises it: the code, the message and the HTTP status EC2 pairs with it.
export class Ec2Error extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}
