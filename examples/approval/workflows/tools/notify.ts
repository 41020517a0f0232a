/** Records a notification; a real flow would send an e-mail or a chat message here. */
export default (input: { message: string }) => ({ sent: true, message: input.message });
